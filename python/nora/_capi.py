"""ctypes binding of libNoraCAPI.so (include/nora-c/Nora.h).

The library is found, in order: $NORA_LIBRARY (a path to the .so), the
package's own `_lib/` (an installed package, scripts/install-python.sh), the
`lib/` of the build tree this package sits in (python/ next to build/), and
the system's library path. `available()` says whether it loaded;
`load()` returns it or raises NoraUnavailable with what was tried.
"""

import ctypes
import os

_HERE = os.path.dirname(os.path.abspath(__file__))
_API_VERSION = 1
_lib = None
_error = None


class NoraUnavailable(RuntimeError):
    """The compiled nora library (libNoraCAPI.so) cannot be loaded."""


class NoraError(RuntimeError):
    """A nora compile, lower or call failed; the message says why."""


def library_candidates(filename, env_var, build_dirs):
    """Where a nora library is looked for, in order: $env_var (a path), the
    package's `_lib/`, `<build>/lib` of the source tree this package sits
    in, and the system's library path."""
    env = os.environ.get(env_var)
    if env:
        yield env
        return
    yield os.path.join(_HERE, "_lib", filename)
    for build in build_dirs:
        yield os.path.normpath(os.path.join(_HERE, "..", "..", build, "lib",
                                            filename))
    yield filename


def open_library(filename, env_var, build_dirs, version_symbol, version,
                 declare, hint):
    """The first of library_candidates(filename, ...) that loads and whose
    `version_symbol()` returns `version`, with `declare(lib)` applied (the
    ctypes signatures); else NoraUnavailable saying what was tried."""
    tried = []
    for path in library_candidates(filename, env_var, build_dirs):
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            tried.append("%s (%s)" % (path, e))
            continue
        version_fn = getattr(lib, version_symbol)
        version_fn.restype = ctypes.c_int
        found = version_fn()
        if found != version:
            tried.append("%s (C API version %d, this package needs %d)"
                         % (path, found, version))
            continue
        declare(lib)
        return lib
    raise NoraUnavailable("%s could not be loaded; %s. Tried: %s"
                          % (filename, hint, "; ".join(tried)))


def _declare(lib):
    c = ctypes
    p = c.c_void_p
    lib.nora_compile_cpu.restype = p
    lib.nora_compile_cpu.argtypes = [c.c_char_p, c.c_size_t, c.c_char_p,
                                     c.c_int, c.c_char_p, c.POINTER(p)]
    lib.nora_function_destroy.argtypes = [p]
    lib.nora_function_num_arguments.argtypes = [p]
    lib.nora_function_num_results.argtypes = [p]
    i = c.POINTER(c.c_int)
    dims = c.POINTER(c.c_int64)
    lib.nora_function_argument.argtypes = [p, c.c_int, i, i, i, dims]
    lib.nora_function_result.argtypes = [p, c.c_int, i, i, dims]
    lib.nora_function_call.argtypes = [p, c.POINTER(p), c.POINTER(dims),
                                       c.POINTER(c.c_float), c.POINTER(p),
                                       c.POINTER(p)]
    lib.nora_lower.restype = p
    lib.nora_lower.argtypes = [c.c_char_p, c.c_size_t, c.c_char_p,
                               c.POINTER(p)]
    lib.nora_string_free.argtypes = [p]


def load():
    """The loaded library (cached)."""
    global _lib, _error
    if _lib is not None:
        return _lib
    if _error is not None:
        raise NoraUnavailable(_error)
    try:
        _lib = open_library("libNoraCAPI.so", "NORA_LIBRARY",
                            ("build", "build-asan"), "nora_api_version",
                            _API_VERSION, _declare,
                            "build nora (./scripts/setup.sh) or set "
                            "NORA_LIBRARY")
    except NoraUnavailable as e:
        _error = str(e)
        raise
    return _lib


def available():
    """Whether the compiled library loads (the compiled paths work)."""
    try:
        load()
        return True
    except NoraUnavailable:
        return False


def host_array(value, dtype, where):
    """`value` (array-like) as a C-contiguous numpy array of the argument
    element type `dtype`: float32 for "f32"; for "bf16"/"f16" the 16-bit
    patterns (a uint16 array is taken as such, floats are rounded to
    nearest even). Raises TypeError for non-float data."""
    import numpy as np
    array = np.asarray(value)
    if array.dtype.kind not in "fu" or (array.dtype.kind == "u" and
                                        array.dtype != np.uint16):
        raise TypeError("%s must be a float array (%s), got dtype %s"
                        % (where, dtype, array.dtype))
    if dtype == "f32":
        return np.ascontiguousarray(array, dtype=np.float32)
    if array.dtype != np.uint16:
        from . import reference
        bits = reference.bf16_bits if dtype == "bf16" else reference.f16_bits
        return np.ascontiguousarray(bits(array.astype(np.float32)))
    return np.ascontiguousarray(array)


def check_scalar(value, where):
    """`value` as a float that is finite in f32, else TypeError/ValueError."""
    import numpy as np
    try:
        scalar = float(value)
    except (TypeError, ValueError):
        raise TypeError("%s is an f32 scalar, got %r" % (where, value))
    if not (np.isfinite(scalar) and
            abs(scalar) <= float(np.finfo(np.float32).max)):
        raise ValueError("%s: %r is not a finite f32" % (where, value))
    return scalar


def take_string(free, pointer):
    """The Python str of a C string a nora library allocated; `free` (its
    *_string_free) releases it."""
    if not pointer:
        return None
    try:
        return ctypes.string_at(pointer).decode("utf-8", "replace")
    finally:
        free(pointer)
