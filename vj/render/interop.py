"""CUDA–GL interop: copy a CUDA tensor into a GL texture through a registered PBO, no host copy.

GPU only. Uses the CUDA driver API (libcuda) through ctypes, so no extra package is needed;
nothing is loaded until a `CudaGLUploader` is made. Needs the NVIDIA GL driver (GLX or EGL):
on Mesa (llvmpipe) `interop_unavailable()` says why and callers fall back to host uploads.
"""

from __future__ import annotations

import ctypes
from typing import Any

import moderngl

_REGISTER_WRITE_DISCARD = 2  # CU_GRAPHICS_REGISTER_FLAGS_WRITE_DISCARD


class InteropError(RuntimeError):
    pass


def _load_libcuda() -> ctypes.CDLL:
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    raise InteropError("libcuda (the NVIDIA driver's CUDA library) was not found")


def interop_unavailable(ctx: moderngl.Context) -> str | None:
    """None if CUDA tensors can be uploaded into this GL context directly, else why not."""
    vendor = str(ctx.info.get("GL_VENDOR", "")) + " " + str(ctx.info.get("GL_RENDERER", ""))
    if "nvidia" not in vendor.lower():
        return f"GL renderer is not NVIDIA's ({vendor.strip()})"
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if not torch.cuda.is_available():
        return "torch sees no CUDA device"
    try:
        _load_libcuda()
    except InteropError as exc:
        return str(exc)
    return None


class CudaGLUploader:
    """One PBO registered with CUDA; `upload(tensor, texture)` fills the texture on the GPU.

    Must be created and used on the thread whose GL context is current (the render thread).
    """

    def __init__(self, ctx: moderngl.Context, nbytes: int, device: int = 0) -> None:
        reason = interop_unavailable(ctx)
        if reason is not None:
            raise InteropError(f"CUDA-GL interop unavailable: {reason}")
        self.ctx = ctx
        self._cu = _load_libcuda()
        self._ensure_context(device)
        self.nbytes = int(nbytes)
        self.pbo = ctx.buffer(reserve=self.nbytes, dynamic=True)
        self._res = ctypes.c_void_p()
        self._check(
            self._cu.cuGraphicsGLRegisterBuffer(
                ctypes.byref(self._res), ctypes.c_uint(self.pbo.glo), _REGISTER_WRITE_DISCARD
            ),
            "cuGraphicsGLRegisterBuffer",
        )

    def _check(self, rc: int, what: str) -> None:
        if rc != 0:
            name = ctypes.c_char_p()
            self._cu.cuGetErrorName(rc, ctypes.byref(name))
            msg = name.value.decode() if name.value else str(rc)
            raise InteropError(f"{what} failed: {msg}")

    def _ensure_context(self, device: int) -> None:
        # torch works in the device's primary context; make it current on this thread
        import torch

        torch.cuda.init()
        cur = ctypes.c_void_p()
        self._check(self._cu.cuCtxGetCurrent(ctypes.byref(cur)), "cuCtxGetCurrent")
        if not cur.value:
            dev = ctypes.c_int()
            self._check(self._cu.cuDeviceGet(ctypes.byref(dev), device), "cuDeviceGet")
            self._check(self._cu.cuDevicePrimaryCtxRetain(ctypes.byref(cur), dev), "retain ctx")
            self._check(self._cu.cuCtxSetCurrent(cur), "cuCtxSetCurrent")

    def upload(self, tensor: Any, texture: moderngl.Texture, stream: Any = None) -> None:
        """Copy a contiguous CUDA uint8 tensor [h, w, C] into `texture` (same size, C comps).

        The copy runs on `stream` (a torch.cuda.Stream; default: the current stream), so it is
        ordered after the kernels that produced the tensor on that stream. Unmapping orders it
        before the GL texture update.
        """
        import torch

        h, w, c = tensor.shape
        if not tensor.is_cuda or tensor.dtype != torch.uint8 or not tensor.is_contiguous():
            raise ValueError("interop upload needs a contiguous CUDA uint8 [h, w, C] tensor")
        if texture.size != (w, h) or texture.components != c:
            raise ValueError(
                f"texture {texture.size}x{texture.components} != tensor {tensor.shape}"
            )
        n = h * w * c
        if n > self.nbytes:
            raise ValueError(f"tensor of {n} bytes exceeds the {self.nbytes}-byte interop buffer")
        s = (stream or torch.cuda.current_stream(tensor.device)).cuda_stream
        st = ctypes.c_void_p(s)
        self._check(self._cu.cuGraphicsMapResources(1, ctypes.byref(self._res), st), "map")
        try:
            ptr = ctypes.c_uint64()
            size = ctypes.c_size_t()
            self._check(
                self._cu.cuGraphicsResourceGetMappedPointer_v2(
                    ctypes.byref(ptr), ctypes.byref(size), self._res
                ),
                "cuGraphicsResourceGetMappedPointer",
            )
            self._check(
                self._cu.cuMemcpyDtoDAsync_v2(
                    ctypes.c_uint64(ptr.value),
                    ctypes.c_uint64(tensor.data_ptr()),
                    ctypes.c_size_t(n),
                    st,
                ),
                "cuMemcpyDtoDAsync",
            )
        finally:
            self._check(self._cu.cuGraphicsUnmapResources(1, ctypes.byref(self._res), st), "unmap")
        texture.write(self.pbo)  # PBO → texture: a GPU-side copy

    def release(self) -> None:
        if self._res.value:
            self._cu.cuGraphicsUnregisterResource(self._res)
            self._res = ctypes.c_void_p()
        self.pbo.release()
