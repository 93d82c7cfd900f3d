"""REAPER's C prototypes, and the values the C side of a call sees.

Every API function is declared with the C prototype REAPER's documentation gives it
(e.g. "bool GetUserInputs(const char* title, int num_inputs, const char* captions_csv,
char* retvals_csv, int retvals_csv_sz)"). python_api.py turns a prototype into both
ends of a real ctypes call: a C callback in _ft and the RPR_* wrapper.
"""

from __future__ import annotations

import ctypes
import re
from dataclasses import dataclass

NEED_BIG = 4 * 1024 * 1024  # the buffer REAPER's Python wrapper allocates for char*

# Parameter and return kinds.
VOID, INT, DOUBLE, BOOL = "void", "int", "double", "bool"
CSTR = "const char*"  # input string, or a returned string
BUF = "char*"  # string buffer the callee may write (an output in Python)
INT_OUT, DOUBLE_OUT, BOOL_OUT = "int*", "double*", "bool*"
STR_OUT = "const char**"  # pointer to a string pointer
PTR = "ptr"  # an opaque REAPER object (MediaTrack*, ...), void*, HWND

_SCALARS = {"int": INT, "double": DOUBLE, "bool": BOOL, "char": INT}
_PROTOTYPE = re.compile(r"^\s*(?P<ret>.+?)\s*\b(?P<name>\w+)\s*\((?P<params>.*)\)\s*$")


@dataclass(frozen=True)
class Param:
    name: str
    kind: str
    ctype: str = ""  # for PTR: the type name REAPER's wrapper checks, e.g. "MediaTrack*"

    @property
    def is_output(self) -> bool:
        return self.kind in (BUF, INT_OUT, DOUBLE_OUT, BOOL_OUT)


@dataclass(frozen=True)
class Prototype:
    name: str
    ret: Param
    params: tuple[Param, ...]
    text: str

    @property
    def has_outputs(self) -> bool:
        return any(p.is_output for p in self.params)


def _kind(type_text: str) -> tuple[str, str]:
    text = " ".join(type_text.replace("*", " * ").split())
    base = text.replace("const ", "").replace(" *", "*").strip()
    if base == "void":
        return VOID, ""
    if base in _SCALARS:
        return _SCALARS[base], ""
    if base == "char*":
        return (CSTR, "") if text.startswith("const") else (BUF, "")
    if base == "char**":
        return STR_OUT, "char**"
    if base in ("int*", "double*", "bool*"):
        return {"int*": INT_OUT, "double*": DOUBLE_OUT, "bool*": BOOL_OUT}[base], ""
    if base == "HWND":
        return PTR, "HWND"
    if base.endswith("*"):
        return PTR, base
    raise ValueError(f"no Python ReaScript mapping for C type {type_text!r}")


def parse(text: str) -> Prototype:
    match = _PROTOTYPE.match(text)
    if not match:
        raise ValueError(f"not a C prototype: {text!r}")
    ret_kind, ret_ctype = _kind(match["ret"])
    if ret_kind in (BUF,):
        ret_kind = CSTR  # functions return const char* in practice
    params = []
    for part in filter(None, (p.strip() for p in match["params"].split(","))):
        type_text, _, name = part.rpartition(" ")
        if "*" in name:  # "double *pos" style
            type_text, name = type_text + "*" * name.count("*"), name.replace("*", "")
        kind, ctype = _kind(type_text)
        params.append(Param(name, kind, ctype))
    return Prototype(match["name"], Param("retval", ret_kind, ret_ctype), tuple(params), text)


# -- what an implementation receives ------------------------------------------------------


class Buffer:
    """A char* argument: the string the caller put in and room for an answer."""

    def __init__(self, address: int, size: int):
        self.address = address
        self.size = size

    def read(self) -> str:
        return ctypes.string_at(self.address).decode("utf-8", "replace")

    def write(self, text: str) -> None:
        """Copy at most size-1 bytes and a NUL, as REAPER does; size 0 writes nothing."""
        if self.size <= 0:
            return
        data = text.encode("utf-8")[: self.size - 1]
        ctypes.memmove(self.address, data, len(data))
        ctypes.memset(self.address + len(data), 0, 1)


class Ref:
    """An int*, double*, bool* or const char** argument."""

    _TYPES = {INT_OUT: ctypes.c_int, DOUBLE_OUT: ctypes.c_double, BOOL_OUT: ctypes.c_byte, STR_OUT: ctypes.c_void_p}

    def __init__(self, address: int, kind: str, keepalive: "StringStore"):
        self._cell = self._TYPES[kind].from_address(address)
        self._kind = kind
        self._keepalive = keepalive

    @property
    def value(self):
        return self._cell.value

    @value.setter
    def value(self, new) -> None:
        if self._kind == STR_OUT:
            self._cell.value = self._keepalive.address_of(new)
        elif self._kind == BOOL_OUT:
            self._cell.value = 1 if new else 0
        else:
            self._cell.value = new


class StringStore:
    """C strings REAPER hands out stay valid for a while; these stay valid for good."""

    def __init__(self) -> None:
        self._buffers: dict[bytes, ctypes.Array] = {}

    def address_of(self, text: str) -> int:
        data = text.encode("utf-8")
        buffer = self._buffers.get(data)
        if buffer is None:
            buffer = self._buffers[data] = ctypes.create_string_buffer(data)
        return ctypes.addressof(buffer)
