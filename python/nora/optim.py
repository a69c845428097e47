"""torch.optim optimizers Nora and RMNP whose matrix updates run nora's
compiled step.

    from nora.optim import Nora, param_groups
    opt = Nora(param_groups(model), lr=0.005, weight_decay=0.1)

Every 2-D parameter of a group with ``algorithm="nora"`` (or ``"rmnp"``) is
updated row by row (SEMANTICS.md): momentum, [projection onto the row's
orthogonal complement], row normalization, decoupled weight decay. Other
parameters (vectors, and groups marked ``algorithm="adamw"``: embeddings and
the output head, see `param_groups`) get AdamW with the group's ``adamw_*``
settings, as the official optimizers do.

Backends (``backend=``):
  "auto"   the compiled step (nora's CPU JIT, one compiled function per
           weight shape and hyper-parameters) for float32/bf16/f16 CPU
           parameters when the nora library is available; for float32 CUDA
           parameters on sm_80/sm_90 the GPU kernel of the step alone
           (from the artifact cache, nora.gpu.cached_artifact, or compiled
           into it once per shape with nora-compile; called on device
           memory on torch's current stream, no host copy) when the runtime
           and nora-compile or a cache are available; else "torch";
  "nora"   the compiled step or GPU kernel, an error where it cannot run;
  "torch"  a plain PyTorch implementation of the same formulas (any device).

``nonfinite="skip_step"`` leaves a parameter (and its momentum) bit for bit
unchanged when its gradient holds a NaN or an Inf, ``"skip_row"`` only the
rows of a matrix that do (the semantics of nora.skip_nonfinite, through the
compiled guard, the GPU kernels' guard or the same check in PyTorch);
``opt.nonfinite_skipped`` counts them (the GPU kernels' counts stay on the
device until it is read). The default, None, checks nothing (the official
behaviour).

bf16/f16 parameters keep float32 master weights in the optimizer state
(``state["master"]``); the parameter is the master rounded after each step.
Momentum is float32.

State (``state_dict()``): per matrix parameter ``momentum_buffer`` in the
official optimizers' form (Nora: the EMA buffer ``buf.lerp_(g, 1 - beta)``;
RMNP: the heavy-ball buffer ``buf = mu buf + g``; nora keeps RMNP's buffer
in EMA form internally, ``(1 - mu) buf``, and converts on save and load),
``master`` for low-precision parameters (and for RMNP ``nora_momentum_ema``,
the exact internal buffer, so that nora's own state round-trips bit for
bit); per AdamW parameter ``step``,
``exp_avg``, ``exp_avg_sq`` as torch.optim.AdamW names them. A state saved by
the official optimizers (``momentum_buffer`` only) loads as is.
"""

import math
import os

import torch

from . import _capi, steps


def _cuda_chip(device):
    """The GPU pipeline's chip for a CUDA device, or None."""
    major, minor = torch.cuda.get_device_capability(device)
    if (major, minor) == (9, 0):
        return "sm_90a"
    if major == 8:
        return "sm_80"
    return None


def _cuda_unsupported(p, group):
    """Why the GPU kernel cannot update CUDA parameter `p` (None: it can)."""
    if p.dtype != torch.float32:
        return "the GPU step takes float32 weights, got %s" % p.dtype
    if _cuda_chip(p.device) is None:
        return ("the GPU pipeline compiles for sm_80 and sm_90a, not "
                "compute capability %d.%d"
                % torch.cuda.get_device_capability(p.device))
    from . import gpu
    if not gpu.runtime_available():
        return "the GPU runtime (libNoraRuntimeCAPI.so) is not available"
    if gpu._nora_compile_tool() is None and \
            not os.environ.get("NORA_ARTIFACT_CACHE"):
        return ("nora-compile is not available and no NORA_ARTIFACT_CACHE "
                "of precompiled artifacts is set")
    return None

__all__ = ["Nora", "RMNP", "param_groups"]

_LOW_PRECISION = (torch.bfloat16, torch.float16)


def param_groups(model, adamw_modules=(torch.nn.Embedding,),
                 head_names=("lm_head", "head", "output", "classifier")):
    """Splits `model`'s parameters into a row-wise group (2-D weights) and an
    AdamW group (everything else: vectors, embeddings, and the weights of
    modules named like an output head), the split the official optimizers'
    factory makes."""
    adamw_ids = set()
    for name, module in model.named_modules():
        last = name.rsplit(".", 1)[-1]
        if isinstance(module, adamw_modules) or last in head_names:
            adamw_ids.update(id(p) for p in module.parameters(recurse=False))
    rowwise, adamw = [], []
    for p in model.parameters():
        if not p.requires_grad:
            continue
        (adamw if id(p) in adamw_ids or p.dim() != 2 else rowwise).append(p)
    groups = []
    if rowwise:
        groups.append({"params": rowwise})
    if adamw:
        groups.append({"params": adamw, "algorithm": "adamw"})
    return groups


def _dtensor_type():
    try:
        from torch.distributed.tensor import DTensor
        return DTensor
    except ImportError:  # torch without distributed
        return None


def _local(t):
    """The local tensor of a DTensor, else `t`."""
    dtensor = _dtensor_type()
    return t.to_local() if dtensor and isinstance(t, dtensor) else t


def _local_rows(p):
    """The local rows of a 2-D parameter: itself, or the local shard of a
    DTensor that is sharded on dim 0 or replicated (whole rows)."""
    dtensor = _dtensor_type()
    if not (dtensor and isinstance(p, dtensor)):
        return p.data
    from torch.distributed.tensor import Replicate, Shard
    for placement in p.placements:
        if not (isinstance(placement, Replicate) or
                (isinstance(placement, Shard) and placement.dim == 0)):
            raise ValueError(
                "the row-wise update needs whole rows on each rank: shard "
                "2-D parameters on dim 0 (FSDP2's default), got placements "
                "%s" % (p.placements,))
    return p.to_local()


def _zeros_like_param(p):
    """Float32 zeros shaped and placed like `p` (a DTensor like p for
    sharded parameters, so that DCP can reshard the state)."""
    dtensor = _dtensor_type()
    if dtensor and isinstance(p, dtensor):
        local = torch.zeros(p.to_local().shape, dtype=torch.float32,
                            device=p.to_local().device)
        return dtensor.from_local(local, p.device_mesh, p.placements,
                                  run_check=False, shape=p.shape,
                                  stride=p.stride())
    return torch.zeros(p.shape, dtype=torch.float32, device=p.device)


class _RowwiseOptimizer(torch.optim.Optimizer):
    _kind = None          # "nora" or "rmnp"
    _default_eps = None

    def __init__(self, params, lr=0.005, momentum=0.95, nesterov=True,
                 weight_decay=0.0, eps=None, scale=None, adamw_lr=3e-4,
                 adamw_betas=(0.9, 0.95), adamw_eps=1e-8,
                 adamw_weight_decay=0.0, backend="auto", nonfinite=None):
        eps = self._default_eps if eps is None else eps
        if nonfinite not in (None, "skip_step", "skip_row"):
            raise ValueError("nonfinite must be None, 'skip_step' or "
                             "'skip_row', got %r" % (nonfinite,))
        for name, value in (("lr", lr), ("weight_decay", weight_decay),
                            ("eps", eps), ("adamw_lr", adamw_lr),
                            ("adamw_eps", adamw_eps),
                            ("adamw_weight_decay", adamw_weight_decay)):
            if not isinstance(value, (int, float)) or not math.isfinite(
                    value) or value < 0:
                raise ValueError("%s must be a finite number >= 0, got %r"
                                 % (name, value))
        if not 0.0 <= momentum < 1.0:
            raise ValueError("momentum must be in [0, 1), got %r"
                             % (momentum,))
        if scale is not None and not (isinstance(scale, (int, float)) and
                                      scale > 0):
            raise ValueError("scale must be a positive number or None (the "
                             "shape rule), got %r" % (scale,))
        if len(adamw_betas) != 2 or not all(0 <= b < 1 for b in adamw_betas):
            raise ValueError("adamw_betas must be two numbers in [0, 1)")
        if backend not in ("auto", "nora", "torch"):
            raise ValueError("backend must be 'auto', 'nora' or 'torch', "
                             "got %r" % (backend,))
        if backend == "nora":
            _capi.load()  # raises NoraUnavailable with what was tried
        defaults = dict(lr=lr, momentum=momentum, nesterov=bool(nesterov),
                        weight_decay=weight_decay, eps=eps, scale=scale,
                        adamw_lr=adamw_lr, adamw_betas=tuple(adamw_betas),
                        adamw_eps=adamw_eps,
                        adamw_weight_decay=adamw_weight_decay,
                        algorithm=self._kind, backend=backend,
                        nonfinite=nonfinite)
        super().__init__(params, defaults)
        for group in self.param_groups:
            if group["algorithm"] not in (self._kind, "adamw"):
                raise ValueError("a group's algorithm must be %r or 'adamw', "
                                 "got %r" % (self._kind, group["algorithm"]))
        self._compiled = {}   # (M, N, hyper-parameters) -> nora.Step
        self._scratch = {}    # id(param) -> (w_new, m_new[, count]) buffers
        self._skipped_host = 0
        # CUDA device -> int64 tensor: the GPU kernels' counts, summed on
        # the device (no host sync a step; read by nonfinite_skipped).
        self._skipped_device = {}

    @property
    def nonfinite_skipped(self):
        """Updates left out because of a NaN/Inf gradient, since the
        optimizer was made (or the count was last set): whole matrix (and
        AdamW) updates with nonfinite="skip_step", rows with "skip_row" (an
        AdamW parameter counts as one row). Reading it waits for the GPU
        steps that counted on the device."""
        return self._skipped_host + sum(int(t.item()) for t in
                                        self._skipped_device.values())

    @nonfinite_skipped.setter
    def nonfinite_skipped(self, value):
        self._skipped_host = int(value)
        self._skipped_device = {}

    # --- the matrix update ----------------------------------------------
    def _scale(self, group, M, N):
        if group["scale"] is not None:
            return float(group["scale"])
        return steps.default_scale(self._kind, M, N)

    def _use_nora(self, group, p):
        """"cpu": the compiled CPU step, "cuda": the GPU kernel of the step
        alone on device memory, None: the PyTorch backend."""
        backend = group["backend"]
        if backend == "torch":
            return None
        if p.device.type == "cuda":
            # The GPU kernel has no non-finite guard yet: guarded steps take
            # the PyTorch backend.
            why = _cuda_unsupported(p, group)
            if why is None:
                return "cuda"
            if backend == "nora":
                raise ValueError("backend='nora' cannot update this CUDA "
                                 "parameter: " + why)
            return None
        supported = (p.device.type == "cpu" and p.dtype in
                     (torch.float32,) + _LOW_PRECISION)
        if backend == "nora":
            if not supported:
                raise ValueError("backend='nora' runs float32/bf16/f16 CPU "
                                 "and CUDA parameters; got %s on %s"
                                 % (p.dtype, p.device))
            return "cpu"
        return "cpu" if supported and _capi.available() else None

    def _gpu_step_ir(self, group, M, N, scale, **ir_options):
        """The IR the GPU path compiles: the step alone (g given), or with
        `ir_options` (tokens, act, acc, grad_scale) the fused step that
        computes the gradient too (nora.nn.Linear). What an artifact cache
        filled ahead must hold (scripts/prepare-gpu.sh)."""
        beta = group["momentum"]
        return steps.optimizer_step_ir(
            self._kind, M, N, beta=beta,
            nesterov=beta if group["nesterov"] else None, eps=group["eps"],
            scale=scale, nonfinite=group["nonfinite"], **ir_options)

    def _gpu_artifact(self, ir, device, options=()):
        """The loaded artifact of `ir` on CUDA `device` (nora-compile
        `options`), from the artifact cache or compiled into it, once per
        optimizer."""
        from . import gpu
        key = ("cuda", device.index, ir, tuple(options))
        art = self._compiled.get(key)
        if art is None:
            art = gpu.cached_artifact(ir, "step", _cuda_chip(device),
                                      options=options)
            art.load(device.index or 0)
            self._compiled[key] = art
        return art

    def _gpu_update(self, key, art, inputs, w, m, group):
        """One call of GPU artifact `art` on `inputs` (the gradient, or dy, x
        [, acc]) then w, m, lr and wd, on torch's current stream and device
        memory; W' and M' land in scratch buffers kept under `key` and are
        copied into w and m (the kernel must not write W' over W). With a
        nonfinite guard the kernels' count joins the device-side total."""
        from .gpu import device_ready
        guarded = bool(group["nonfinite"])
        scratch = self._scratch.get(key)
        if scratch is None or scratch[0].shape != w.shape or \
                scratch[0].device != w.device or \
                len(scratch) != 2 + guarded:
            scratch = tuple(torch.empty(w.shape, dtype=torch.float32,
                                        device=w.device) for _ in range(2))
            if guarded:
                scratch += (torch.zeros((), dtype=torch.int64,
                                        device=w.device),)
            self._scratch[key] = scratch
        art.call_device(*[device_ready(t) for t in inputs], device_ready(w),
                        device_ready(m), group["lr"], group["weight_decay"],
                        out=scratch)
        w.copy_(scratch[0])
        m.copy_(scratch[1])
        if guarded:
            total = self._skipped_device.get(w.device)
            if total is None:
                self._skipped_device[w.device] = scratch[2].clone()
            else:
                total.add_(scratch[2])

    def _gpu_step_function(self, group, M, N, scale, device):
        """The GPU artifact of the step alone (g given) for an M x N weight
        on `device`."""
        return self._gpu_artifact(self._gpu_step_ir(group, M, N, scale),
                                  device)

    def _step_function(self, group, M, N, scale, **ir_options):
        """The compiled step of an M x N weight with `group`'s
        hyper-parameters, compiled once and cached; `ir_options` (tokens,
        act, acc, grad_scale) make it the fused form that computes the
        gradient too (nora.nn.Linear)."""
        beta = group["momentum"]
        mu = beta if group["nesterov"] else None
        key = (M, N, beta, mu, group["eps"], scale, group["nonfinite"],
               tuple(sorted(ir_options.items())))
        step = self._compiled.get(key)
        if step is None:
            from .compiler import compile as nora_compile
            ir = steps.optimizer_step_ir(self._kind, M, N, beta=beta,
                                         nesterov=mu, eps=group["eps"],
                                         scale=scale, **ir_options)
            step = self._compiled[key] = nora_compile(
                ir, "step", nonfinite=group["nonfinite"])
        return step

    def _torch_update(self, group, w, m, g, shape=None):
        """The same update in PyTorch (float32, in place on w and m); the
        scale from `shape` (the global shape of a sharded weight)."""
        beta = group["momentum"]
        eps, lr, wd = group["eps"], group["lr"], group["weight_decay"]
        M, N = shape if shape is not None else w.shape
        m.lerp_(g, 1 - beta)
        u = g.lerp(m, beta) if group["nesterov"] else m
        if self._kind == "nora":
            w_hat = w / w.norm(dim=1, keepdim=True).clamp_min(eps)
            u = u - (u * w_hat).sum(dim=1, keepdim=True) * w_hat
        d = u * (self._scale(group, M, N) /
                 u.norm(dim=1, keepdim=True).clamp_min(eps))
        w.mul_(1 - lr * wd).add_(d, alpha=-lr)

    def _torch_guarded_update(self, group, w, m, g, mode, shape):
        """_torch_update with the non-finite guard of `mode` (the semantics
        of nora.skip_nonfinite: skipped rows or matrices keep W and M bit
        for bit)."""
        if mode is None:
            self._torch_update(group, w, m, g, shape)
            return
        bad = ~torch.isfinite(g).all(dim=1)
        if not bad.any():
            self._torch_update(group, w, m, g, shape)
            return
        if mode == "skip_step":
            self._skipped_host += 1
            return
        kept_w, kept_m = w[bad].clone(), m[bad].clone()
        g = torch.where(bad[:, None], torch.zeros_like(g), g)
        self._torch_update(group, w, m, g, shape)
        w[bad], m[bad] = kept_w, kept_m
        self._skipped_host += int(bad.sum())

    def _matrix_step(self, group, p):
        g = p.grad
        if g.is_sparse:
            raise RuntimeError("%s does not support sparse gradients"
                               % type(self).__name__)
        state = self.state[p]
        low = p.dtype in _LOW_PRECISION
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = _zeros_like_param(p)
            if low:
                state["master"] = p.detach().float()
        # A DTensor sharded on dim 0 (FSDP2's fully_shard) holds whole rows:
        # the update is local, no communication. The scale comes from the
        # global shape.
        M, N = p.shape
        p_local = _local_rows(p)
        w = _local(state["master"]) if low else p_local
        m = _local(state["momentum_buffer"])
        g32 = _local(g).float()
        if w.shape[0] == 0:
            return  # an empty shard
        mode = group["nonfinite"]
        where = self._use_nora(group, p_local)
        if where is None:
            self._torch_guarded_update(group, w, m, g32, mode, (M, N))
        elif where == "cuda":
            art = self._gpu_step_function(group, w.shape[0], N,
                                          self._scale(group, M, N), w.device)
            self._gpu_update(id(p), art, [g32], w, m, group)
        else:
            step = self._step_function(group, w.shape[0], N,
                                       self._scale(group, M, N))
            scratch = self._scratch.get(id(p))
            if scratch is None or scratch[0].shape != w.shape:
                scratch = (torch.empty(w.shape, dtype=torch.float32),
                           torch.empty(w.shape, dtype=torch.float32))
                if mode:
                    scratch += (torch.zeros(step.results[2][1],
                                            dtype=torch.int64),)
                self._scratch[id(p)] = scratch
            w_in = w if w.is_contiguous() else w.contiguous()
            step(g32.contiguous(), w_in, m, group["lr"],
                 group["weight_decay"], out=scratch)
            w.copy_(scratch[0])
            m.copy_(scratch[1])
            if mode:
                self._skipped_host += int(scratch[2].reshape(-1)[0])
        if low:
            p_local.copy_(w)

    # --- AdamW for everything else ----------------------------------------
    def _adamw_step(self, group, p):
        g = p.grad
        if g.is_sparse:
            raise RuntimeError("AdamW here does not support sparse gradients")
        state = self.state[p]
        if "step" not in state:
            state["step"] = torch.tensor(0.0)
            state["exp_avg"] = torch.zeros_like(p, dtype=torch.float32)
            state["exp_avg_sq"] = torch.zeros_like(p, dtype=torch.float32)
        if group["nonfinite"] and not torch.isfinite(g).all():
            self._skipped_host += 1
            return
        beta1, beta2 = group["adamw_betas"]
        lr, eps = group["adamw_lr"], group["adamw_eps"]
        state["step"] += 1
        t = float(state["step"])
        g32 = g.float()
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg.lerp_(g32, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(g32, g32, value=1 - beta2)
        bias1, bias2 = 1 - beta1 ** t, 1 - beta2 ** t
        denom = (exp_avg_sq.sqrt() / math.sqrt(bias2)).add_(eps)
        p32 = p.data.float() if p.dtype != torch.float32 else p.data
        p32.mul_(1 - lr * group["adamw_weight_decay"])
        p32.addcdiv_(exp_avg, denom, value=-lr / bias1)
        if p32 is not p.data:
            p.data.copy_(p32)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            rowwise = group["algorithm"] == self._kind
            for p in group["params"]:
                if p.grad is None:
                    continue
                if rowwise and p.dim() == 2:
                    self._matrix_step(group, p)
                else:
                    self._adamw_step(group, p)
        return loss

    # --- state in the official form ----------------------------------------
    def _to_official(self, group, buffer):
        return buffer

    def _from_official(self, group, buffer):
        return buffer

    def state_dict(self):
        sd = super().state_dict()
        groups = {}
        for index, group in enumerate(self.param_groups):
            for p in group["params"]:
                groups[id(p)] = group
        params = [p for g in self.param_groups for p in g["params"]]
        for index, p in enumerate(params):
            entry = sd["state"].get(index)
            if entry and "momentum_buffer" in entry:
                entry = dict(entry)
                internal = entry["momentum_buffer"]
                official = self._to_official(groups[id(p)], internal)
                if official is not internal:
                    # The exact internal buffer too, so that our own state
                    # round-trips bit for bit (the conversion rounds).
                    entry["nora_momentum_ema"] = internal.clone()
                entry["momentum_buffer"] = official.clone()
                sd["state"][index] = entry
        return sd

    def load_state_dict(self, state_dict):
        # torch.optim casts every state tensor to its parameter's dtype: keep
        # the float32 momentum, master weights and AdamW moments of
        # low-precision parameters in float32.
        saved = state_dict.get("state", {})
        # The saved state's keys are parameter indices (state_dict()) or
        # names (torch.distributed.checkpoint): map them as torch.optim does,
        # by the order of the groups' "params".
        key_to_param = {}
        for saved_group, group in zip(state_dict.get("param_groups", []),
                                      self.param_groups):
            for key, p in zip(saved_group.get("params", []), group["params"]):
                key_to_param[key] = p
        super().load_state_dict(state_dict)
        groups = {id(p): g for g in self.param_groups for p in g["params"]}
        for index, p in key_to_param.items():
            entry = saved.get(index)
            state = self.state.get(p)
            if not entry or state is None:
                continue
            for key in ("momentum_buffer", "master", "exp_avg",
                        "exp_avg_sq"):
                if key not in entry:
                    continue
                value = entry[key]
                if not isinstance(value, torch.Tensor) or \
                        value.shape != p.shape:
                    raise ValueError(
                        "state %r of parameter #%d: expected a tensor of "
                        "shape %s, got %s" % (key, index, tuple(p.shape),
                                              getattr(value, "shape", value)))
                value = value.to(dtype=torch.float32, device=p.device)
                if key == "momentum_buffer":
                    exact = entry.get("nora_momentum_ema")
                    value = (exact.to(dtype=torch.float32, device=p.device)
                             if isinstance(exact, torch.Tensor) and
                             exact.shape == p.shape
                             else self._from_official(groups[id(p)], value))
                state[key] = value.clone().contiguous()
            state.pop("nora_momentum_ema", None)
            if ("momentum_buffer" in state and p.dtype in _LOW_PRECISION and
                    "master" not in state):
                state["master"] = p.detach().float()


class Nora(_RowwiseOptimizer):
    """Nora (arXiv 2605.03769): per row, EMA momentum with Nesterov, the
    projection onto the orthogonal complement of the weight row, row
    normalization to `scale` (default max(1, sqrt(M/N))), decoupled weight
    decay. Defaults of the official optimizer: lr 0.005, momentum 0.95,
    nesterov, eps 1e-10, weight_decay 0."""
    _kind = "nora"
    _default_eps = 1e-10


class RMNP(_RowwiseOptimizer):
    """RMNP: row-normalized momentum without the projection (F.normalize's
    eps 1e-12, Moonlight's scale 0.2 sqrt(max(M, N))). The heavy-ball
    buffer of the official optimizer is kept in EMA form, (1 - mu) buf,
    which gives exactly the same direction; state_dict() and
    load_state_dict() convert."""
    _kind = "rmnp"
    _default_eps = 1e-12

    def _to_official(self, group, buffer):
        return buffer / (1 - group["momentum"])

    def _from_official(self, group, buffer):
        return buffer * (1 - group["momentum"])
