"""`prefetch(a, i)`: ask the CPU to start loading a[i]'s cache line, for jitted kernels.

A kernel that knows which scattered records it will touch next can issue their loads
together, so that their trips to memory overlap instead of queuing one behind the other.
It is only a hint: it changes no value, and a CPU may ignore it.
"""
from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def prefetch(typingctx, arr, idx):
    """Prefetch element idx of the 1-D array arr, for writing, into every cache level."""
    if not (isinstance(arr, types.Array) and arr.ndim == 1 and isinstance(idx, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        i = context.cast(builder, args[1], signature.args[1], types.intp)
        ptr = builder.gep(ary.data, [i])
        if getattr(ptr.type, "is_opaque", False):
            name = "llvm.prefetch.p0"
        else:   # LLVM before opaque pointers
            ptr = builder.bitcast(ptr, ir.IntType(8).as_pointer())
            name = "llvm.prefetch.p0i8"
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [ptr.type, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, name)
        # (address, 1 = for a write, 3 = keep in every cache level, 1 = data)
        builder.call(fn, [ptr, i32(1), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(arr, idx), codegen
