"""Dataset preparation: sub-images, meta-info files, multiscale DF2K and LMDB (the functions
behind ``tools/*.py``). Every job reads with :mod:`realesrgan_plugin.core.img_io`, writes
atomically, skips finished work when re-run and reports bad files instead of stopping."""

from realesrgan_plugin.core.meta_info import LmdbEntry, lmdb_key, parse_meta_line, read_lmdb_meta_info
from realesrgan_plugin.prep.batch import BatchReport, list_images
from realesrgan_plugin.prep.lmdb_writer import create_lmdb, verify_lmdb
from realesrgan_plugin.prep.meta_info import generate_meta_info, generate_meta_info_pairdata, pair_by_name
from realesrgan_plugin.prep.multiscale import generate_multiscale, multiscale_sizes, resize_lanczos
from realesrgan_plugin.prep.subimages import extract_subimages

__all__ = [
    'BatchReport',
    'LmdbEntry',
    'create_lmdb',
    'extract_subimages',
    'generate_meta_info',
    'generate_meta_info_pairdata',
    'generate_multiscale',
    'list_images',
    'lmdb_key',
    'multiscale_sizes',
    'pair_by_name',
    'parse_meta_line',
    'read_lmdb_meta_info',
    'resize_lanczos',
    'verify_lmdb',
]
