"""The plugin's MMEngine scope (``default_scope='realesrgan_plugin'``).

MMEngine resolves a scope by importing ``<scope>.registry`` and looking for child registries
with that scope; this module is that hook and nothing else. It belongs to the MMEngine adapter:
only MMEngine (or code that asks for the scope) imports it.
"""

from realesrgan_plugin.mmengine import registry as _mmengine_registry  # noqa: F401
