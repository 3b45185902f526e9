"""The loop-nest IR, its printer and small passes."""

from .nodes import Alloc, Buffer, BufferLoad, For, If, Kernel, Seq, Stmt, Store, Sync

__all__ = ["Alloc", "Buffer", "BufferLoad", "For", "If", "Kernel", "Seq", "Stmt", "Store", "Sync"]
