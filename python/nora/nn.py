"""Optimizer in backward: a Linear layer whose backward pass updates its
weight with Nora or RMNP in nora's fused step (the weight gradient
dW = dY^T X and the optimizer update in one compiled function), so that the
weight gradient is never stored.

    layer = nora.nn.Linear(512, 256, optimizer="nora", lr=0.005)
    # or: layer = nora.nn.fuse_optimizer(existing_linear, optimizer="rmnp")
    loss = model(x).sum(); loss.backward()    # the weight is updated here

- The input gradient uses the weight from before the update, as autograd
  would; the bias (if any) gets an ordinary gradient, for a regular
  optimizer.
- Gradient accumulation: ``accumulation_steps=k`` adds the weight gradients
  of k backward passes (micro-batches) into a float32 accumulator and
  updates on the k-th, where the fused step takes the accumulator as its
  ``acc`` operand (scaled by ``1/k`` with ``average=True``).
- ``layer.fused = False`` turns it off: the weight gets ``.grad`` as in
  torch.nn.Linear and any optimizer can update it.
- lr and wd can change between steps (``layer.lr = ...``): they are runtime
  arguments of the compiled step, a schedule never recompiles. A new token
  count (batch x sequence) compiles once more and is cached.

The fused step runs on the CPU JIT for float32 CPU layers and needs the
compiled nora library; elsewhere (or with ``backend="torch"``) the same
update runs in PyTorch after an explicit weight-gradient matmul.
"""

import torch

from . import _capi
__all__ = ["Linear", "fuse_optimizer"]


class _Rule:
    """The update rule of one layer: the hyper-parameters and the row-wise
    arithmetic of nora.optim (reused for the PyTorch backend)."""

    def __init__(self, kind, lr, momentum, nesterov, weight_decay, eps,
                 scale):
        if kind not in ("nora", "rmnp"):
            raise ValueError("optimizer must be 'nora' or 'rmnp', got %r"
                             % (kind,))
        from .optim import RMNP, Nora
        cls = Nora if kind == "nora" else RMNP
        # Validates the hyper-parameters as the optimizers do.
        probe = torch.nn.Parameter(torch.zeros(1, 1))
        self.optimizer = cls([probe], lr=lr, momentum=momentum,
                             nesterov=nesterov, weight_decay=weight_decay,
                             eps=eps, scale=scale, backend="torch")
        self.group = self.optimizer.param_groups[0]
        self.kind = kind


class _FusedLinearFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, layer):
        ctx.save_for_backward(x)
        ctx.layer = layer
        ctx.has_bias = bias is not None
        return torch.nn.functional.linear(x, weight, bias)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        layer = ctx.layer
        weight = layer.weight
        # dX with the weight from before the update.
        grad_x = grad_out @ weight.detach() if ctx.needs_input_grad[0] else None
        grad_b = None
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_out.reshape(-1, grad_out.shape[-1]).sum(0)
        dy = grad_out.reshape(-1, grad_out.shape[-1])
        x2 = x.reshape(-1, x.shape[-1])
        layer._apply_fused_update(dy.detach(), x2.detach())
        return grad_x, None, grad_b, None


class Linear(torch.nn.Linear):
    """torch.nn.Linear whose backward applies the optimizer to the weight
    (see the module documentation)."""

    def __init__(self, in_features, out_features, bias=True, optimizer="nora",
                 lr=0.005, momentum=0.95, nesterov=True, weight_decay=0.0,
                 eps=None, scale=None, accumulation_steps=1, average=True,
                 backend="auto", device=None, dtype=None):
        super().__init__(in_features, out_features, bias=bias, device=device,
                         dtype=dtype)
        self._init_fused(optimizer, lr, momentum, nesterov, weight_decay, eps,
                         scale, accumulation_steps, average, backend)

    def _init_fused(self, optimizer, lr, momentum, nesterov, weight_decay,
                    eps, scale, accumulation_steps, average, backend):
        if not isinstance(accumulation_steps, int) or accumulation_steps < 1:
            raise ValueError("accumulation_steps must be an integer >= 1, "
                             "got %r" % (accumulation_steps,))
        if backend not in ("auto", "nora", "torch"):
            raise ValueError("backend must be 'auto', 'nora' or 'torch'")
        if backend == "nora":
            _capi.load()
        self.rule = _Rule(optimizer, lr, momentum, nesterov, weight_decay,
                          eps, scale)
        self.fused = True
        self.accumulation_steps = accumulation_steps
        self.average = bool(average)
        self.backend = backend
        self._micro = 0
        self.register_buffer("momentum_buffer",
                             torch.zeros(self.weight.shape,
                                         dtype=torch.float32,
                                         device=self.weight.device),
                             persistent=True)
        self._accumulator = None

    # lr and wd as attributes: a schedule changes them between steps.
    @property
    def lr(self):
        return self.rule.group["lr"]

    @lr.setter
    def lr(self, value):
        self.rule.group["lr"] = float(value)

    @property
    def weight_decay(self):
        return self.rule.group["weight_decay"]

    @weight_decay.setter
    def weight_decay(self, value):
        self.rule.group["weight_decay"] = float(value)

    def forward(self, x):
        if not (self.fused and self.training and torch.is_grad_enabled()):
            return super().forward(x)
        if x.shape[-1] != self.in_features:
            raise ValueError("Linear expects inputs with %d features, got "
                             "shape %s" % (self.in_features, tuple(x.shape)))
        return _FusedLinearFunction.apply(x, self.weight, self.bias, self)

    # --- the update --------------------------------------------------------
    def _use_nora(self):
        """"cpu": the compiled fused step, "cuda": the fused GPU kernel on
        device memory, None: PyTorch."""
        if self.backend == "torch":
            return None
        if self.weight.device.type == "cuda":
            from .optim import _cuda_unsupported
            why = _cuda_unsupported(self.weight, self.rule.group)
            if why is None:
                return "cuda"
            if self.backend == "nora":
                raise ValueError("backend='nora' cannot run this CUDA layer: "
                                 + why)
            return None
        ok = (self.weight.device.type == "cpu" and
              self.weight.dtype == torch.float32)
        if self.backend == "nora" and not ok:
            raise ValueError("backend='nora' runs float32 CPU and CUDA "
                             "layers")
        return "cpu" if ok and _capi.available() else None

    def _step_function(self, tokens, with_acc, grad_scale):
        g = self.rule.group
        M, N = self.weight.shape
        return self.rule.optimizer._step_function(
            g, M, N, self.rule.optimizer._scale(g, M, N), tokens=tokens,
            acc=with_acc, grad_scale=grad_scale)

    def _apply_fused_update(self, dy, x):
        self._micro += 1
        last = self._micro == self.accumulation_steps
        k = self.accumulation_steps
        scale = 1.0 / k if self.average else 1.0
        if not last:
            # Accumulate dY^T X of this micro-batch (float32).
            partial = dy.float().t() @ x.float()
            if self._accumulator is None:
                self._accumulator = partial
            else:
                self._accumulator += partial
            return
        self._micro = 0
        acc = self._accumulator
        self._accumulator = None
        w, m = self.weight.data, self.momentum_buffer
        g = self.rule.group
        with torch.no_grad():
            where = self._use_nora()
            if where == "cuda":
                self._cuda_fused_update(dy, x, acc, scale)
            elif where == "cpu":
                if acc is not None and scale != 1.0:
                    acc = acc * scale
                step = self._step_function(dy.shape[0], acc is not None,
                                           scale)
                args = [dy.float().contiguous(), x.float().contiguous()]
                if acc is not None:
                    args.append(acc.contiguous())
                new_w, new_m = step(*args, w.contiguous(), m, g["lr"],
                                    g["weight_decay"])
                w.copy_(torch.from_numpy(new_w))
                m.copy_(torch.from_numpy(new_m))
            else:
                grad = dy.float().t() @ x.float()
                if acc is not None:
                    grad = grad + acc
                if scale != 1.0:
                    grad = grad * scale
                w32 = w.float()
                self.rule.optimizer._torch_update(g, w32, m, grad)
                w.copy_(w32)


    def _cuda_fused_update(self, dy, x, acc, scale):
        """One launch of the fused kernel: g = scale dy^T x (+ acc) in its
        mainloop (tensor cores for bf16/f16 activations; for f32 ones too,
        on tf32, when torch.backends.cuda.matmul.allow_tf32 is set, as for
        torch's own matmuls), W and M updated in its epilogue, g never
        stored; on torch's current stream."""
        opt, g = self.rule.optimizer, self.rule.group
        M, N = self.weight.shape
        act = {torch.bfloat16: "bf16", torch.float16: "f16"}.get(dy.dtype,
                                                                 "f32")
        if x.dtype != dy.dtype or act == "f32":
            dy, x = dy.float(), x.float()
            act = "f32"
        if acc is not None and scale != 1.0:
            acc = acc * scale
        ir = opt._gpu_step_ir(g, M, N, opt._scale(g, M, N),
                              tokens=dy.shape[0], act=act,
                              acc=acc is not None, grad_scale=scale)
        tf32 = act == "f32" and torch.backends.cuda.matmul.allow_tf32
        art = opt._gpu_artifact(ir, self.weight.device,
                                ("--allow-tf32",) if tf32 else ())
        inputs = [dy, x] + ([acc.float()] if acc is not None else [])
        opt._gpu_update(("linear", id(self)), art, inputs, self.weight.data,
                        self.momentum_buffer, g)


def fuse_optimizer(linear, optimizer="nora", **kwargs):
    """A nora.nn.Linear with `linear`'s weight and bias (shared, not
    copied): the same layer with its optimizer in backward."""
    if not isinstance(linear, torch.nn.Linear):
        raise TypeError("fuse_optimizer takes a torch.nn.Linear, got %s"
                        % type(linear).__name__)
    fused = Linear.__new__(Linear)
    torch.nn.Module.__init__(fused)
    fused.in_features, fused.out_features = (linear.in_features,
                                             linear.out_features)
    fused.weight = linear.weight
    fused.bias = linear.bias
    defaults = dict(lr=0.005, momentum=0.95, nesterov=True, weight_decay=0.0,
                    eps=None, scale=None, accumulation_steps=1, average=True,
                    backend="auto")
    unknown = set(kwargs) - set(defaults)
    if unknown:
        raise TypeError("fuse_optimizer: unknown arguments %s"
                        % sorted(unknown))
    defaults.update(kwargs)
    fused._init_fused(optimizer, **defaults)
    return fused
