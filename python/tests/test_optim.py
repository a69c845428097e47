"""nora.optim.Nora / RMNP: 20 steps of a small MLP and of a tiny transformer
block against the official formulas (nora.official, float32 numpy) and
torch.optim.AdamW for the AdamW group; compiled and PyTorch backends;
state_dict round trip and the official buffer forms; bf16 master weights;
bad arguments."""

import copy
import io

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import nora  # noqa: E402
from nora import official  # noqa: E402
from nora.optim import RMNP, Nora, param_groups  # noqa: E402

BACKENDS = ["torch"] + (["nora"] if nora.available() else [])
HYPER = dict(lr=0.02, weight_decay=0.1, adamw_lr=1e-3,
             adamw_weight_decay=0.01)


def mlp():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(12, 32), torch.nn.Tanh(),
                               torch.nn.Linear(32, 24), torch.nn.Tanh(),
                               torch.nn.Linear(24, 5))


class TinyBlock(torch.nn.Module):
    """Embedding, one transformer encoder layer, an output head."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.embed = torch.nn.Embedding(50, 16)
        self.block = torch.nn.TransformerEncoderLayer(
            16, 2, dim_feedforward=32, dropout=0.0, batch_first=True)
        self.head = torch.nn.Linear(16, 50)

    def forward(self, tokens):
        return self.head(self.block(self.embed(tokens)))


def batches(kind, steps=20):
    g = torch.Generator().manual_seed(2)
    for _ in range(steps):
        if kind == "mlp":
            x = torch.randn(16, 12, generator=g)
            yield x, torch.randn(16, 5, generator=g)
        else:
            t = torch.randint(0, 50, (4, 6), generator=g)
            yield t, torch.randint(0, 50, (4, 6), generator=g)


def loss_of(model, kind, inputs, target):
    out = model(inputs)
    if kind == "mlp":
        return torch.nn.functional.mse_loss(out, target)
    return torch.nn.functional.cross_entropy(out.reshape(-1, 50),
                                             target.reshape(-1))


class OfficialReference:
    """The official update on float32 numpy for the row-wise group (each
    matrix parameter and its buffer), torch.optim.AdamW for the rest."""

    def __init__(self, model, rowwise_cls, nesterov):
        self.model = model
        groups = param_groups(model)
        self.rowwise = list(groups[0]["params"])
        others = [p for g in groups[1:] for p in g["params"]]
        self.adamw = torch.optim.AdamW(others, lr=HYPER["adamw_lr"],
                                       betas=(0.9, 0.95), eps=1e-8,
                                       weight_decay=HYPER["adamw_weight_decay"])
        self.buffers = {id(p): np.zeros(tuple(p.shape), np.float32)
                        for p in self.rowwise}
        self.fn = (official.official_nora_step if rowwise_cls is Nora
                   else official.official_rmnp_step)
        self.nesterov = nesterov

    @torch.no_grad()
    def step(self):
        for p in self.rowwise:
            w, buf = self.fn(p.detach().numpy(), self.buffers[id(p)],
                             p.grad.numpy(), HYPER["lr"],
                             HYPER["weight_decay"], nesterov=self.nesterov)
            p.copy_(torch.from_numpy(np.asarray(w, np.float32)))
            self.buffers[id(p)] = np.asarray(buf, np.float32)
        self.adamw.step()


def train(model, opt, kind, steps=20, zero=None):
    for inputs, target in batches(kind, steps):
        opt.zero_grad()
        loss_of(model, kind, inputs, target).backward()
        opt.step()


def assert_models_close(a, b, tol=2e-4):
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        scale = 1 + q.detach().abs().max().item()
        err = (p.detach() - q.detach()).abs().max().item() / scale
        assert err <= tol, "%s differs by %.3g" % (name, err)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cls", [Nora, RMNP])
@pytest.mark.parametrize("nesterov", [True, False])
@pytest.mark.parametrize("kind", ["mlp", "block"])
def test_matches_official_formulas(backend, cls, nesterov, kind):
    model = mlp() if kind == "mlp" else TinyBlock()
    ref_model = copy.deepcopy(model)
    opt = cls(param_groups(model), nesterov=nesterov, backend=backend,
              **HYPER)
    ref = OfficialReference(ref_model, cls, nesterov)
    # Both optimizers see the same gradients (those of `model`), so that
    # only their arithmetic can differ: Adam turns the rounding noise of a
    # near-zero gradient (attention's key bias) into full-size steps.
    named_ref = dict(ref_model.named_parameters())
    for inputs, target in batches(kind):
        opt.zero_grad()
        loss_of(model, kind, inputs, target).backward()
        for name, p in model.named_parameters():
            named_ref[name].grad = p.grad.clone()
        opt.step()
        ref.step()
    assert_models_close(model, ref_model)
    if kind == "block":
        # The embedding and the head went to AdamW, the block's matrices to
        # the row-wise update.
        groups = param_groups(model)
        adamw = {id(p) for p in groups[1]["params"]}
        assert id(model.embed.weight) in adamw
        assert id(model.head.weight) in adamw
        assert id(model.block.linear1.weight) not in adamw


@pytest.mark.skipif(not nora.available(), reason="libNoraCAPI.so not built")
@pytest.mark.parametrize("cls", [Nora, RMNP])
def test_compiled_and_torch_backends_agree(cls):
    a = mlp()
    b = copy.deepcopy(a)
    oa = cls(param_groups(a), backend="nora", **HYPER)
    ob = cls(param_groups(b), backend="torch", **HYPER)
    train(a, oa, "mlp", steps=5)
    train(b, ob, "mlp", steps=5)
    assert_models_close(a, b, tol=1e-5)
    assert oa._compiled, "the compiled path did not run"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cls", [Nora, RMNP])
def test_state_dict_round_trip(backend, cls):
    a = mlp()
    opt_a = cls(param_groups(a), backend=backend, **HYPER)
    train(a, opt_a, "mlp", steps=5)
    saved = io.BytesIO()
    torch.save({"model": a.state_dict(), "opt": opt_a.state_dict()}, saved)
    # Continue the original and a restored copy: bitwise the same.
    b = mlp()
    opt_b = cls(param_groups(b), backend=backend, **HYPER)
    saved.seek(0)
    blob = torch.load(saved)
    b.load_state_dict(blob["model"])
    opt_b.load_state_dict(blob["opt"])
    for x, y in batches("mlp", 3):
        for model, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            loss_of(model, "mlp", x, y).backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


def test_rmnp_state_is_the_official_heavy_ball_buffer():
    model = torch.nn.Linear(6, 4, bias=False)
    opt = RMNP(model.parameters(), backend="torch", lr=0.01, momentum=0.9)
    g1 = torch.randn(4, 6)
    model.weight.grad = g1.clone()
    opt.step()
    # buf = mu * 0 + g after one step.
    buf = opt.state_dict()["state"][0]["momentum_buffer"]
    assert torch.allclose(buf, g1, rtol=1e-6, atol=1e-7)
    # A state in the official form loads: the next step continues it.
    model.weight.grad = g1.clone()
    opt.step()
    expected = 0.9 * g1 + g1
    assert torch.allclose(opt.state_dict()["state"][0]["momentum_buffer"],
                          expected, rtol=1e-5, atol=1e-6)
    fresh = torch.nn.Linear(6, 4, bias=False)
    opt2 = RMNP(fresh.parameters(), backend="torch", lr=0.01, momentum=0.9)
    opt2.load_state_dict({"state": {0: {"momentum_buffer": expected}},
                          "param_groups": opt.state_dict()["param_groups"]})
    assert torch.allclose(opt2.state[fresh.weight]["momentum_buffer"],
                          0.1 * expected, rtol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bf16_parameters_keep_f32_master_weights(backend):
    torch.manual_seed(3)
    w32 = torch.randn(8, 16) * 0.1
    p = torch.nn.Parameter(w32.to(torch.bfloat16))
    opt = Nora([p], backend=backend, lr=0.01, weight_decay=0.1)
    g = torch.randn(8, 16)
    p.grad = g.to(torch.bfloat16)
    opt.step()
    state = opt.state[p]
    assert state["master"].dtype == torch.float32
    assert state["momentum_buffer"].dtype == torch.float32
    assert torch.equal(p.data, state["master"].to(torch.bfloat16))
    w, buf = official.official_nora_step(
        p.data.float().numpy() * 0 + w32.to(torch.bfloat16).float().numpy(),
        np.zeros((8, 16), np.float32), g.to(torch.bfloat16).float().numpy(),
        0.01, 0.1)
    assert np.abs(state["master"].numpy() - w).max() < 1e-5
    # The master and momentum stay float32 through a save and load.
    opt2 = Nora([p], backend=backend, lr=0.01, weight_decay=0.1)
    opt2.load_state_dict(opt.state_dict())
    assert opt2.state[p]["master"].dtype == torch.float32
    assert torch.equal(opt2.state[p]["master"], state["master"])


def test_bad_arguments():
    w = torch.nn.Parameter(torch.randn(4, 4))
    with pytest.raises(ValueError, match="lr must be"):
        Nora([w], lr=-1.0)
    with pytest.raises(ValueError, match="momentum must be in"):
        Nora([w], momentum=1.0)
    with pytest.raises(ValueError, match="scale must be"):
        Nora([w], scale=0.0)
    with pytest.raises(ValueError, match="backend must be"):
        Nora([w], backend="gpu")
    with pytest.raises(ValueError, match="algorithm must be"):
        Nora([{"params": [w], "algorithm": "sgd"}])
    opt = Nora([w], backend="torch")
    w.grad = torch.randn(4, 4).to_sparse()
    with pytest.raises(RuntimeError, match="sparse"):
        opt.step()
    opt = Nora([w], backend="torch")
    w.grad = torch.randn(4, 4)
    opt.step()
    sd = opt.state_dict()
    sd["state"][0]["momentum_buffer"] = torch.zeros(3, 3)
    with pytest.raises(ValueError, match="expected a tensor of shape"):
        Nora([w], backend="torch").load_state_dict(sd)
    if nora.available():
        meta = torch.nn.Parameter(torch.empty(4, 4, dtype=torch.float64))
        meta.grad = torch.zeros(4, 4, dtype=torch.float64)
        with pytest.raises(ValueError, match="backend='nora' runs"):
            Nora([meta], backend="nora").step()


def test_vectors_in_a_rowwise_group_get_adamw():
    bias = torch.nn.Parameter(torch.randn(5))
    ref = torch.nn.Parameter(bias.detach().clone())
    opt = Nora([bias], adamw_lr=1e-2, backend="torch")
    ref_opt = torch.optim.AdamW([ref], lr=1e-2, betas=(0.9, 0.95), eps=1e-8,
                                weight_decay=0.0)
    for _ in range(3):
        g = torch.randn(5)
        bias.grad, ref.grad = g.clone(), g.clone()
        opt.step()
        ref_opt.step()
    assert torch.allclose(bias, ref, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cls", [Nora, RMNP])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nonfinite_gradients(backend, cls, bad):
    torch.manual_seed(4)
    w0 = torch.randn(6, 10) * 0.1
    g = torch.randn(6, 10)
    g_bad = g.clone()
    g_bad[2, 3] = bad
    results = {}
    for mode in ("skip_row", "skip_step", None):
        p = torch.nn.Parameter(w0.clone())
        opt = cls([p], backend=backend, lr=0.05, nonfinite=mode)
        p.grad = g.clone()
        opt.step()  # a clean step first: the momentum is not zero
        w1, m1 = p.detach().clone(), opt.state[p]["momentum_buffer"].clone()
        p.grad = g_bad.clone()
        opt.step()
        results[mode] = (w1, m1, p.detach().clone(),
                         opt.state[p]["momentum_buffer"].clone(),
                         opt.nonfinite_skipped)
    # The clean reference of the second step, rows other than 2.
    p = torch.nn.Parameter(w0.clone())
    opt = cls([p], backend=backend, lr=0.05)
    for _ in range(2):
        p.grad = g.clone()
        opt.step()
    w_ref = p.detach()
    w1, m1, w2, m2, count = results["skip_row"]
    assert count == 1
    assert torch.equal(w2[2], w1[2]) and torch.equal(m2[2], m1[2])
    rows = [0, 1, 3, 4, 5]
    assert torch.allclose(w2[rows], w_ref[rows], rtol=1e-6, atol=1e-7)
    w1, m1, w2, m2, count = results["skip_step"]
    assert count == 1
    assert torch.equal(w2, w1) and torch.equal(m2, m1)
    # No guard: the official behaviour, the bad row is not finite any more.
    _, _, w2, _, count = results[None]
    assert count == 0 and not torch.isfinite(w2[2]).all()


def test_nonfinite_skips_adamw_parameters_too():
    bias = torch.nn.Parameter(torch.zeros(4))
    opt = Nora([bias], backend="torch", nonfinite="skip_step")
    bias.grad = torch.tensor([1.0, float("nan"), 0.0, 0.0])
    opt.step()
    assert torch.equal(bias.detach(), torch.zeros(4))
    assert opt.nonfinite_skipped == 1
    with pytest.raises(ValueError, match="nonfinite must be"):
        Nora([bias], nonfinite="skip")
