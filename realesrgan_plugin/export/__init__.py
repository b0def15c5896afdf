"""Deployment exports of the generators (ONNX)."""

from realesrgan_plugin.export.onnx_export import (
    PARAMS_KEYS,
    build_generator,
    export_onnx,
    export_pth_to_onnx,
    load_generator,
    select_state_dict,
    verify_onnx,
)

__all__ = [
    'PARAMS_KEYS',
    'build_generator',
    'export_onnx',
    'export_pth_to_onnx',
    'load_generator',
    'select_state_dict',
    'verify_onnx',
]
