"""Training on many processes (torchrun).

`torchrun --nproc_per_node N -m attncli train ...` (or `attncli train --nproc N`, or several
machines with torchrun's --nnodes and --rdzv-* options) starts one process per rank with RANK,
WORLD_SIZE, LOCAL_RANK and the rendezvous address in the environment. `Ranks.join` joins the
process group (gloo on CPU, NCCL on CUDA); without torchrun a run is a world of one that makes
no collective call at all, so one-process training is exactly what it was.

How the ranks share a run (data parallel, as DistributedDataParallel):
  - every rank builds the same seeded epoch batches, with --batch-tokens x N tokens each, and
    takes every N-th pair of each (`share`): the pairs are length-sorted, so the shares pad alike;
  - each rank's loss is weighted by its share of the batch's target tokens (`weight`) and the
    gradients are summed over ranks in one flat all-reduce, so N processes with --batch-tokens B
    compute the update of one process with N x B;
  - rank 0 alone validates, writes the model and the training state and shows progress; its
    decisions (stop, learning-rate decay) are broadcast after every update, so all stop together;
  - a stop request (Ctrl-C, SIGTERM) seen by any rank is agreed on at the next update boundary.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch

from .errors import OptionError

# How long a collective may wait. Rank 0 alone reads and encodes the corpus (and runs the aligner)
# while the others wait at a barrier: a 4 GB corpus took ~10 minutes on 2 cores (README "Large
# corpora"); torch's defaults (10 minutes with NCCL, 30 with gloo) would end such runs. A rank that
# fails is stopped by torchrun, which stops the others, so a long wait here is not a hang.
JOIN_TIMEOUT = timedelta(hours=4)


def threads_per_process() -> int:
    """CPU threads for one training process: the cores shared among torchrun's processes on this
    machine (LOCAL_WORLD_SIZE), all of them for a process alone."""
    return max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


@dataclass(frozen=True)
class Ranks:
    """This process's place among the training processes; a world of one without torchrun."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def join(cls, device: torch.device) -> "Ranks":
        """Join torchrun's process group when started by it (WORLD_SIZE > 1): gloo on the CPU; on
        GPUs, NCCL for CUDA tensors (the gradients) and gloo for the small CPU ones (token counts,
        decisions). `device` is this process's own (`local_device`)."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world == 1:
            return cls()
        import torch.distributed as dist

        if not dist.is_initialized():
            if device.type == "cuda":
                torch.cuda.set_device(device)
                dist.init_process_group("cpu:gloo,cuda:nccl", device_id=device, timeout=JOIN_TIMEOUT)
            else:
                dist.init_process_group("gloo", timeout=JOIN_TIMEOUT)
        return cls(dist.get_rank(), dist.get_world_size())

    @staticmethod
    def local_device(device: torch.device) -> torch.device:
        """This process's device: under torchrun each process on a machine takes its own GPU
        (LOCAL_RANK); one GPU named for several processes, or more processes than GPUs, is a
        one-line error (the same on every process of the machine, so its first says it: cli.fail)."""
        if device.type != "cuda" or "LOCAL_RANK" not in os.environ:
            return device
        processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        if device.index is not None:
            if processes > 1:
                raise OptionError(f"--device {device}: {processes} processes on this machine cannot share one GPU; "
                                  "use --device cuda (each process takes its own).")
            return device
        if processes > torch.cuda.device_count():
            raise OptionError(f"{processes} processes on this machine need a GPU each and it has "
                              f"{torch.cuda.device_count()}: start at most that many (--nproc, --nproc_per_node), "
                              "or train on the CPU (--device cpu).")
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))      # an index: set_device and NCCL need one

    def share(self, batch: Any) -> Any:
        """This rank's pairs of a global batch: every world-th one, from its rank."""
        return batch[self.rank::self.world] if self.world > 1 else batch

    def weight(self, tokens: int) -> float:
        """Factor on this rank's mean loss so that summed gradients are those of the global mean:
        its tokens over the batch's tokens on all ranks."""
        if self.world == 1:
            return 1.0
        return tokens / max(self.sum(tokens), 1)

    def sum(self, value: int) -> int:
        import torch.distributed as dist

        total = torch.tensor([value], dtype=torch.int64)
        dist.all_reduce(total)
        return int(total.item())

    def any(self, flag: bool) -> bool:
        """True on every rank when `flag` is true on any."""
        if self.world == 1:
            return flag
        return self.sum(int(flag)) > 0

    def sum_gradients(self, model: torch.nn.Module) -> None:
        """Replace each gradient by its sum over ranks: one flat all-reduce per update."""
        if self.world == 1:
            return
        import torch.distributed as dist

        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in model.parameters()]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        offset = 0
        for parameter, grad in zip(model.parameters(), grads):
            parameter.grad = flat[offset:offset + grad.numel()].view_as(grad)
            offset += grad.numel()

    def check_in_step(self, model: torch.nn.Module) -> None:
        """Raise if the ranks' weights differ (they apply the same summed gradients, so they never
        should: this guards the design, at the cost of one small all-gather)."""
        if self.world == 1:
            return
        import torch.distributed as dist

        with torch.no_grad():
            mine = torch.stack([sum(p.double().sum() for p in model.parameters()),
                                sum(p.double().square().sum() for p in model.parameters())]).cpu()
        every = [torch.zeros_like(mine) for _ in range(self.world)]
        dist.all_gather(every, mine)
        if any(not torch.equal(other, every[0]) for other in every):
            raise RuntimeError(f"the weights of the {self.world} training processes differ; please report this.")

    def broadcast(self, value: Any) -> Any:
        """Rank 0's `value` on every rank (a small picklable object: decisions, not tensors)."""
        if self.world == 1:
            return value
        import torch.distributed as dist

        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def leave(self) -> None:
        """Leave the process group once every rank is done (a rank that left early could make
        another's teardown abort)."""
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()
            dist.destroy_process_group()


def launch_processes(nproc: int, argv: list[str]) -> int:
    """`attncli train --nproc N ...`: torchrun's launcher on this machine, running the same command
    without --nproc in N processes; returns their exit status (130 when interrupted). A failing
    process has said why on stderr; the launcher's own logging is kept quiet."""
    if nproc < 1:
        raise OptionError(f"--nproc must be at least 1, got {nproc}.")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise OptionError("--nproc: this process was itself started by torchrun; use one or the other.")
    import logging
    import tempfile

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    for name in list(logging.root.manager.loggerDict):       # the launcher's notices are not the user's business
        if name.startswith("torch.distributed"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    with tempfile.TemporaryDirectory(prefix="attncli-torchrun-") as log_dir:   # else torchrun leaves a folder in /tmp
        arguments = get_args_parser().parse_args(["--standalone", f"--nproc-per-node={nproc}", "--log-dir", log_dir,
                                                  "-m", "attncli", *without_option(argv, "--nproc")])
        try:
            run(arguments)
        except ChildFailedError as failed:
            code = failed.get_first_failure()[1].exitcode
            return code if code > 0 else 128 - code          # killed by a signal: 128 + its number
        except SignalException:
            return 130
    return 0


def without_option(argv: list[str], option: str) -> list[str]:
    """`argv` without `option VALUE` or `option=VALUE`."""
    kept, skip = [], False
    for argument in argv:
        if skip:
            skip = False
        elif argument == option:
            skip = True
        elif not argument.startswith(option + "="):
            kept.append(argument)
    return kept
