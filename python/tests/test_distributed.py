"""FSDP2 on CPU (gloo, 2 processes): Nora and RMNP update each rank's rows
locally, with no collective inside the step, and give the same weights as
one process without sharding, including uneven shards (7 rows on 2 ranks)
and a rank with an empty shard (1 row). The sharded optimizer state saves
with torch.distributed.checkpoint (DCP) from 2 ranks and loads into 1
process, which then continues exactly as an unsharded run would. With DDP
the step runs after the gradient all-reduce, again with no collective of
its own, and matches one process on the whole batch."""

import contextlib
import os
import socket
import sys

import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")
if not dist.is_available() or not dist.is_gloo_available():
    pytest.skip("torch.distributed with gloo is not available",
                allow_module_level=True)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

import nora  # noqa: E402
from nora.optim import RMNP, Nora, param_groups  # noqa: E402

STEPS = 4
COLLECTIVES = ("all_reduce", "all_gather", "all_gather_into_tensor",
               "reduce_scatter", "reduce_scatter_tensor", "broadcast",
               "all_to_all", "send", "recv", "barrier")


def model():
    torch.manual_seed(0)
    # 7 rows: uneven shards on 2 ranks; 1 row: rank 1 holds nothing.
    return torch.nn.Sequential(torch.nn.Linear(10, 7), torch.nn.Tanh(),
                               torch.nn.Linear(7, 5), torch.nn.Tanh(),
                               torch.nn.Linear(5, 1))


def batch(step):
    g = torch.Generator().manual_seed(100 + step)
    return torch.randn(8, 10, generator=g), torch.randn(8, 1, generator=g)


def make_optimizer(cls, m, backend):
    return cls(param_groups(m), lr=0.05, weight_decay=0.1, adamw_lr=1e-2,
               backend=backend)


def train_steps(m, opt, steps, start=0, guard=None):
    for step in range(start, start + steps):
        x, y = batch(step)
        opt.zero_grad()
        torch.nn.functional.mse_loss(m(x), y).backward()
        if guard is None:
            opt.step()
        else:
            with guard():
                opt.step()


class NoCollectives:
    """Makes every torch.distributed collective raise while active."""

    def __enter__(self):
        self.saved = {}
        for name in COLLECTIVES:
            if hasattr(dist, name):
                self.saved[name] = getattr(dist, name)

                def refuse(*args, _name=name, **kwargs):
                    raise AssertionError("collective %s inside the "
                                         "optimizer step" % _name)
                setattr(dist, name, refuse)
        return self

    def __exit__(self, *exc):
        for name, fn in self.saved.items():
            setattr(dist, name, fn)


@contextlib.contextmanager
def process_group(rank, world, port):
    """A gloo process group for this worker; both ranks leave together: a
    rank that tears down its gloo connections while the other is still in
    a collective (DCP's last one) makes that one abort."""
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        yield
        dist.barrier()
    finally:
        dist.destroy_process_group()


def worker(rank, world, port, cls_name, backend, out_dir):
    with process_group(rank, world, port):
        from torch.distributed.fsdp import fully_shard
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import (
            get_model_state_dict, get_optimizer_state_dict)
        cls = {"Nora": Nora, "RMNP": RMNP}[cls_name]
        m = model()
        for layer in m:
            if isinstance(layer, torch.nn.Linear):
                fully_shard(layer)
        fully_shard(m)
        opt = make_optimizer(cls, m, backend)
        train_steps(m, opt, STEPS, guard=NoCollectives)
        # The momentum of a sharded weight is a DTensor sharded like it.
        w = m[0].weight
        buf = opt.state[w]["momentum_buffer"]
        assert type(buf).__name__ == "DTensor", type(buf)
        assert buf.placements == w.placements
        full = {k: v.full_tensor() for k, v in m.state_dict().items()}
        if rank == 0:
            torch.save(full, os.path.join(out_dir, "weights.pt"))
        dcp.save({"model": get_model_state_dict(m),
                  "optim": get_optimizer_state_dict(m, opt)},
                 checkpoint_id=os.path.join(out_dir, "ckpt"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


BACKENDS = ["torch"] + (["nora"] if nora.available() else [])


def spawn_two(fn, *args):
    """Runs fn(rank, 2, port, *args) in two processes and waits for both."""
    import torch.multiprocessing as mp
    mp.spawn(fn, args=(2, free_port()) + args, nprocs=2, join=True)


def assert_saved_state(path, ref, rtol, atol):
    """The state a worker saved at `path` matches module `ref`'s."""
    saved = torch.load(path)
    for name, value in ref.state_dict().items():
        assert torch.allclose(saved[name], value, rtol=rtol, atol=atol), name


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cls", [Nora, RMNP])
def test_fsdp2_matches_one_process_and_dcp_reshards(tmp_path, cls, backend):
    spawn_two(worker, cls.__name__, backend, str(tmp_path))
    # One process, no sharding, the same steps.
    ref = model()
    ref_opt = make_optimizer(cls, ref, backend)
    train_steps(ref, ref_opt, STEPS)
    assert_saved_state(tmp_path / "weights.pt", ref, rtol=1e-6, atol=1e-7)

    # Load the 2-rank checkpoint into one process (a change of world size)
    # and continue: the same as continuing the unsharded run.
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import (
        get_model_state_dict, get_optimizer_state_dict, set_model_state_dict,
        set_optimizer_state_dict)
    resumed = model()
    resumed_opt = make_optimizer(cls, resumed, backend)
    state = {"model": get_model_state_dict(resumed),
             "optim": get_optimizer_state_dict(resumed, resumed_opt)}
    dcp.load(state, checkpoint_id=os.path.join(tmp_path, "ckpt"))
    set_model_state_dict(resumed, state["model"])
    set_optimizer_state_dict(resumed, resumed_opt, state["optim"])
    train_steps(resumed, resumed_opt, 2, start=STEPS)
    train_steps(ref, ref_opt, 2, start=STEPS)
    for (name, a), b in zip(resumed.state_dict().items(),
                            ref.state_dict().values()):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6), name


def ddp_worker(rank, world, port, backend, out_dir):
    with process_group(rank, world, port):
        from torch.nn.parallel import DistributedDataParallel as DDP
        m = DDP(model())
        opt = make_optimizer(Nora, m.module, backend)
        for step in range(STEPS):
            x, y = batch(step)
            half = x.shape[0] // world
            xs, ys = x[rank * half:(rank + 1) * half], \
                y[rank * half:(rank + 1) * half]
            opt.zero_grad()
            torch.nn.functional.mse_loss(m(xs), ys).backward()
            # DDP has all-reduced the gradients: the step is the fused
            # optimizer-only update, on every rank, with no communication.
            with NoCollectives():
                opt.step()
        if rank == 0:
            torch.save(m.module.state_dict(), os.path.join(out_dir, "ddp.pt"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_ddp_step_after_the_all_reduce(tmp_path, backend):
    spawn_two(ddp_worker, backend, str(tmp_path))
    ref = model()
    opt = make_optimizer(Nora, ref, backend)
    # One process on the whole batch: the mean of the two halves' gradients.
    train_steps(ref, opt, STEPS)
    assert_saved_state(tmp_path / "ddp.pt", ref, rtol=1e-5, atol=1e-6)
