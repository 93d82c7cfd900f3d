"""The `reaper_python` module REAPER gives Python ReaScripts, built over the stand-in.

As in REAPER, the API is a table of C function pointers (`_ft`) and one RPR_*
wrapper per function that packs its arguments with ctypes, calls the pointer and
returns REAPER's Python shape: the bare return value when the function has no
output parameters, else a tuple of the return value (when not void) followed by
every argument, outputs filled in. Pointers travel as strings such as
"(MediaTrack*)0x0000000010A01F40"; a string that does not name a live object of the
expected type packs to NULL. `const char**` outputs (EnumProjectMarkers' name) are
packed as pointers, so they come back unchanged, as in REAPER's Python.

Here the C functions are ctypes callbacks into capi.py, so code that calls `_ft`
directly (reapy's additional_api does) goes through the same path.
"""

from __future__ import annotations

import ctypes
import re
import threading
import traceback
import types

from . import capi
from .model import ReaperApp, StandInFault
from .prototypes import (
    BOOL, BOOL_OUT, BUF, CSTR, DOUBLE, DOUBLE_OUT, INT, INT_OUT, NEED_BIG, PTR, STR_OUT, VOID,
    Buffer, Prototype, Ref, StringStore,
)

# Types on the C side of the callback (what capi.py receives) ...
_CALLEE_ARG = {
    INT: ctypes.c_int, DOUBLE: ctypes.c_double, BOOL: ctypes.c_byte, CSTR: ctypes.c_char_p,
    BUF: ctypes.c_void_p, INT_OUT: ctypes.c_void_p, DOUBLE_OUT: ctypes.c_void_p,
    BOOL_OUT: ctypes.c_void_p, STR_OUT: ctypes.c_void_p, PTR: ctypes.c_uint64,
}
# a returned string is an address into memory the callee keeps alive
_CALLEE_RET = {VOID: None, INT: ctypes.c_int, DOUBLE: ctypes.c_double, BOOL: ctypes.c_byte, CSTR: ctypes.c_void_p, PTR: ctypes.c_uint64}
# ... and on the caller's side, in the generated RPR_* wrapper.
_CALLER_ARG = {
    INT: "c_int", DOUBLE: "c_double", BOOL: "c_byte", CSTR: "c_char_p", BUF: "c_char_p",
    INT_OUT: "c_void_p", DOUBLE_OUT: "c_void_p", BOOL_OUT: "c_void_p", STR_OUT: "c_uint64", PTR: "c_uint64",
}
_CALLER_RET = {VOID: "None", INT: "c_int", DOUBLE: "c_double", BOOL: "c_byte", CSTR: "c_char_p", PTR: "c_uint64"}

_POINTER = re.compile(r"^\((\w+\*|HWND)\)0x([0-9A-F]+)$")


class _Pending(threading.local):
    error: BaseException | None = None


def _callee(app: ReaperApp, prototype: Prototype, function, strings: StringStore, pending: _Pending):
    params = prototype.params
    raw_pointers = getattr(function, "raw_pointers", False)
    sizes = {}
    for index, param in enumerate(params):
        following = params[index + 1] if index + 1 < len(params) else None
        if param.kind == BUF and following is not None and following.name == param.name + "_sz":
            sizes[index] = index + 1

    def convert(index, param, value, raw):
        kind = param.kind
        if kind == PTR:
            if param.ctype in capi.OBJECT_TYPES and not raw_pointers:
                return app.pointers.resolve(value, param.ctype)
            return value
        if kind == CSTR:
            return None if value is None else value.decode("utf-8", "replace")
        if kind == BUF:
            if not value:
                return None
            return Buffer(value, raw[sizes[index]] if index in sizes else NEED_BIG)
        if kind in (INT_OUT, DOUBLE_OUT, BOOL_OUT, STR_OUT):
            return Ref(value, kind, strings) if value else None
        if kind == BOOL:
            return bool(value)
        return value

    ret = prototype.ret.kind

    def call(*raw):
        try:
            args = [convert(i, p, v, raw) for i, (p, v) in enumerate(zip(params, raw))]
            result = function(app, *args)
            if ret == VOID:
                return None
            if ret == PTR:
                return 0 if result is None else (result if isinstance(result, int) else result.address)
            if ret == CSTR:
                return None if result is None else strings.address_of(result)
            if ret == BOOL:
                return 1 if result else 0
            return result
        except BaseException as error:  # a ctypes callback cannot raise: hand it to the wrapper
            app.fault(error)
            pending.error = error
            return None if ret in (VOID, CSTR) else 0

    callback_type = ctypes.CFUNCTYPE(_CALLEE_RET[ret], *(_CALLEE_ARG[p.kind] for p in params))
    return callback_type(call)


def _wrapper_source(prototype: Prototype) -> str:
    """An RPR_* function in the shape REAPER generates for Python."""
    name, params, ret = prototype.name, prototype.params, prototype.ret
    args = ",".join(f"p{i}" for i in range(len(params)))
    packs, call_args, results = [], [], []
    for i, param in enumerate(params):
        kind = param.kind
        if kind == PTR:
            packs.append(f"rpr_packp('{param.ctype}',p{i})")
        elif kind == STR_OUT:
            packs.append(f"rpr_packp('char**',p{i})")
        elif kind == CSTR:
            packs.append(f"rpr_packsc(p{i})")
        elif kind == BUF:
            packs.append(f"rpr_packs(p{i})")
        elif kind in (INT, INT_OUT):
            packs.append(f"c_int(p{i})")
        elif kind in (DOUBLE, DOUBLE_OUT):
            packs.append(f"c_double(p{i})")
        else:
            packs.append(f"c_byte(p{i})")
        call_args.append(f"byref(t[{i}])" if kind in (INT_OUT, DOUBLE_OUT, BOOL_OUT) else f"t[{i}]")
        if kind == BUF:
            results.append(f"rpr_unpacks(t[{i}])")
        elif kind in (INT_OUT, BOOL_OUT):
            results.append(f"int(t[{i}].value)")
        elif kind == DOUBLE_OUT:
            results.append(f"float(t[{i}].value)")
        else:
            results.append(f"p{i}")
    if ret.kind == PTR:
        value = f"rpr_unpackp('{ret.ctype}',r)"
    elif ret.kind == CSTR:
        value = "str(r.decode())"
    else:
        value = "r"
    types_ = ",".join([_CALLER_RET[ret.kind], *(_CALLER_ARG[p.kind] for p in params)])
    lines = [f"def RPR_{name}({args}):", f"  a=_ft['{name}']", f"  f=CFUNCTYPE({types_})(a)"]
    if params:
        lines.append(f"  t=({','.join(packs)},)")
    call = f"f({','.join(call_args)})"
    lines.append(f"  {call}" if ret.kind == VOID else f"  r={call}")
    lines.append("  _standin_check()")
    if prototype.has_outputs:
        lines.append(f"  return ({','.join(([value] if ret.kind != VOID else []) + results)})")
    elif ret.kind != VOID:
        lines.append(f"  return {value}")
    return "\n".join(lines) + "\n"


def build_reaper_python(app: ReaperApp) -> types.ModuleType:
    """A fresh `reaper_python` module bound to `app`."""
    module = types.ModuleType("reaper_python")
    module.__file__ = "<acestep-dcc REAPER stand-in>/reaper_python.py"
    ns = module.__dict__
    for name in ("CFUNCTYPE", "byref", "create_string_buffer", "c_int", "c_double", "c_byte",
                 "c_char_p", "c_void_p", "c_uint64", "cast", "POINTER"):
        ns[name] = getattr(ctypes, name)
    strings = StringStore()
    pending = _Pending()
    callbacks = {}
    ft = {}
    for prototype, function in capi.FUNCTIONS:
        callback = _callee(app, prototype, function, strings, pending)
        callbacks[prototype.name] = callback
        ft[prototype.name] = ctypes.cast(callback, ctypes.c_void_p).value
    ns["_ft"] = ft
    ns["_standin_callbacks"] = callbacks  # keeps the C entry points alive
    ns["_standin_app"] = app

    def _standin_check():
        error, pending.error = pending.error, None
        if error is not None:
            if isinstance(error, StandInFault):
                raise StandInFault(str(error)) from error
            raise StandInFault(f"the REAPER stand-in failed inside a call: {error!r}\n{''.join(traceback.format_exception(error))}") from error

    def rpr_initft(table):
        if not ft:
            ft.update(table)

    def rpr_getfp(name):
        return ft[name]

    def rpr_packp(t, v):
        match = _POINTER.match(str(v))
        if match is None:
            return 0
        kind, digits = match.groups()
        if kind != t and t != "void*":
            return 0
        address = int(digits, 16) & 0xFFFFFFFFFFFFFFFF
        return address if ns["RPR_ValidatePtr"](address, t) else 0

    def rpr_unpackp(t, v):
        return "(%s)0x%016X" % (t, v or 0)

    def rpr_packsc(v):
        return ctypes.c_char_p(str(v).encode("utf-8"))

    def rpr_packs(v):
        return ctypes.create_string_buffer(str(v).encode("utf-8"), NEED_BIG)

    def rpr_unpacks(v):
        return str(v.value.decode())

    for helper in (_standin_check, rpr_initft, rpr_getfp, rpr_packp, rpr_unpackp, rpr_packsc, rpr_packs, rpr_unpacks):
        ns[helper.__name__] = helper

    for prototype, _function in capi.FUNCTIONS:
        if prototype.name == "ValidatePtr":
            continue
        exec(compile(_wrapper_source(prototype), f"<reaper_python RPR_{prototype.name}>", "exec"), ns)
        ns[f"RPR_{prototype.name}"].__module__ = "reaper_python"

    # REAPER's own ValidatePtr wrapper takes the raw address, as rpr_packp needs.
    exec(
        "def RPR_ValidatePtr(p,t):\n"
        "  f=CFUNCTYPE(c_byte,c_uint64,c_char_p)(_ft['ValidatePtr'])\n"
        "  r=f(c_uint64(p),rpr_packsc(t))\n"
        "  _standin_check()\n"
        "  return r\n",
        ns,
    )

    # Python-only: REAPER runs the code string later, in the script's namespace.
    def RPR_defer(code):
        app.scripts.defer(code)
        return True

    def RPR_runloop(code):
        app.scripts.defer(code)
        return True

    def RPR_atexit(code):
        app.scripts.atexit(code)
        return True

    for function in (RPR_defer, RPR_runloop, RPR_atexit):
        function.__module__ = "reaper_python"
        ns[function.__name__] = function
    return module


def main_namespace(module: types.ModuleType) -> types.ModuleType:
    """The `__main__` REAPER runs Python ReaScripts in: reaper_python star-imported, and
    `obj`, the name reapy looks for to know it is inside REAPER."""
    main = types.ModuleType("__main__")
    for name, value in module.__dict__.items():
        if name.startswith(("RPR_", "rpr_")):
            main.__dict__[name] = value
    main.__dict__["obj"] = None
    return main
