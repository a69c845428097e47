"""nora.nn.Linear: the optimizer in backward against autograd + nora.optim
on the same data, gradient accumulation, the off switch, wrapping."""

import copy

import pytest

torch = pytest.importorskip("torch")

import nora  # noqa: E402
from nora.nn import Linear, fuse_optimizer  # noqa: E402
from nora.optim import RMNP, Nora  # noqa: E402

BACKENDS = ["torch"] + (["nora"] if nora.available() else [])


def data(steps, batch=6, seq=None, n=12, m=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    shape = (batch, n) if seq is None else (batch, seq, n)
    out = (batch, m) if seq is None else (batch, seq, m)
    return [(torch.randn(*shape, generator=g), torch.randn(*out, generator=g))
            for _ in range(steps)]


def close(a, b, tol=1e-5):
    err = (a - b).abs().max().item() / (1 + b.abs().max().item())
    assert err <= tol, err


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind,cls", [("nora", Nora), ("rmnp", RMNP)])
@pytest.mark.parametrize("seq", [None, 5])
def test_matches_autograd_and_optimizer(backend, kind, cls, seq):
    torch.manual_seed(1)
    fused = Linear(12, 8, optimizer=kind, lr=0.05, weight_decay=0.1,
                   backend=backend)
    plain = torch.nn.Linear(12, 8)
    plain.load_state_dict({k: v for k, v in fused.state_dict().items()
                           if k in ("weight", "bias")})
    opt = cls([plain.weight], lr=0.05, weight_decay=0.1, backend="torch")
    bias_opt_f = torch.optim.SGD([fused.bias], lr=0.1)
    bias_opt_p = torch.optim.SGD([plain.bias], lr=0.1)
    for x, y in data(4, seq=seq):
        xf, xp = x.clone().requires_grad_(), x.clone().requires_grad_()
        for layer, inp in ((fused, xf), (plain, xp)):
            loss = torch.nn.functional.mse_loss(layer(inp), y)
            loss.backward()
        opt.step()
        opt.zero_grad()
        bias_opt_f.step()
        bias_opt_p.step()
        bias_opt_f.zero_grad()
        bias_opt_p.zero_grad()
        # dX from the weight before the update; no weight gradient kept.
        close(xf.grad, xp.grad)
        assert fused.weight.grad is None
        close(fused.weight.detach(), plain.weight.detach())
        close(fused.bias.detach(), plain.bias.detach())
    close(fused.momentum_buffer,
          opt.state_dict()["state"][0]["momentum_buffer"] *
          (0.05 if kind == "rmnp" else 1.0))


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradient_accumulation(backend):
    torch.manual_seed(2)
    fused = Linear(12, 8, bias=False, accumulation_steps=3, lr=0.05,
                   backend=backend)
    plain = torch.nn.Linear(12, 8, bias=False)
    plain.weight.data.copy_(fused.weight.data)
    opt = Nora([plain.weight], lr=0.05, backend="torch")
    before = fused.weight.detach().clone()
    micro = data(3, seed=3)
    for i, (x, y) in enumerate(micro):
        torch.nn.functional.mse_loss(fused(x), y).backward()
        if i < 2:  # no update before the last micro-batch
            assert torch.equal(fused.weight.detach(), before)
    for x, y in micro:  # averaged over the 3 micro-batches
        (torch.nn.functional.mse_loss(plain(x), y) / 3).backward()
    opt.step()
    close(fused.weight.detach(), plain.weight.detach())


def test_off_switch_and_eval():
    layer = Linear(12, 8)
    layer.fused = False
    x, y = data(1)[0]
    w0 = layer.weight.detach().clone()
    torch.nn.functional.mse_loss(layer(x), y).backward()
    assert layer.weight.grad is not None
    assert torch.equal(layer.weight.detach(), w0)
    layer.fused = True
    layer.eval()
    layer.weight.grad = None
    out = layer(x)
    out.sum().backward()
    assert layer.weight.grad is not None  # eval: a plain Linear


def test_fuse_optimizer_shares_parameters_and_schedules():
    base = torch.nn.Linear(12, 8)
    layer = fuse_optimizer(base, optimizer="rmnp", lr=0.1)
    assert layer.weight is base.weight and layer.bias is base.bias
    layer.lr = 0.0
    layer.weight_decay = 0.0
    w0 = base.weight.detach().clone()
    x, y = data(1)[0]
    torch.nn.functional.mse_loss(layer(x), y).backward()
    assert torch.equal(base.weight.detach(), w0)  # lr = 0: unchanged
    layer.lr = 0.1
    torch.nn.functional.mse_loss(layer(x), y).backward()
    assert not torch.equal(base.weight.detach(), w0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="optimizer must be"):
        Linear(4, 4, optimizer="adam")
    with pytest.raises(ValueError, match="accumulation_steps"):
        Linear(4, 4, accumulation_steps=0)
    with pytest.raises(ValueError, match="lr must be"):
        Linear(4, 4, lr=float("nan"))
    with pytest.raises(TypeError, match="takes a torch.nn.Linear"):
        fuse_optimizer(torch.nn.Conv1d(2, 2, 1))
    with pytest.raises(TypeError, match="unknown arguments"):
        fuse_optimizer(torch.nn.Linear(2, 2), betas=(0.9, 0.9))
    layer = Linear(4, 4)
    with pytest.raises(ValueError, match="expects inputs with 4 features"):
        layer(torch.randn(2, 5))
