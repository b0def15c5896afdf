"""Deployment exports of the generators (ONNX)."""

from realesrgan_plugin.export.onnx_export import (
    PARAMS_KEYS,
    export_onnx,
    export_pth_to_onnx,
    load_generator,
    param_key_for,
    verify_onnx,
)

__all__ = [
    'PARAMS_KEYS',
    'export_onnx',
    'export_pth_to_onnx',
    'load_generator',
    'param_key_for',
    'verify_onnx',
]
