import os
import tempfile

from realesrgan_plugin.core.atomic import TEMP_SUFFIX, remove_stale_temp_files
from realesrgan_plugin.core.img_io import ImageReadError, from_float32, png_params, read_image, to_float32, write_image

import cv2
import numpy as np
import pytest


@pytest.mark.parametrize(
    'img',
    [
        np.arange(48, dtype=np.uint8).reshape(4, 4, 3),
        np.arange(16, dtype=np.uint8).reshape(4, 4),
        (np.arange(64, dtype=np.uint16) * 1000).reshape(4, 4, 4),
    ],
    ids=['bgr8', 'gray8', 'bgra16'],
)
def test_png_roundtrip_keeps_depth_and_channels(tmp_path, img):
    write_image(tmp_path / 'a.png', img)
    back = read_image(tmp_path / 'a.png')
    assert back.dtype == img.dtype and back.shape == img.shape
    np.testing.assert_array_equal(back, img)


def test_bit_depth_by_dtype_not_by_value():
    dark16 = np.full((2, 2), 200, np.uint16)  # a dark 16-bit image never exceeds 255
    assert to_float32(dark16).max() == pytest.approx(200 / 65535)
    assert from_float32(to_float32(dark16), np.uint16).tolist() == dark16.tolist()


@pytest.mark.parametrize(
    ('content', 'reason'),
    [
        (b'', 'empty'),
        (b'this is text, not a png', 'not a decodable image'),
        (b'\x89PNG\r\n\x1a\n\x00\x00', 'not a'),
    ],
)
def test_bad_files_name_the_file(tmp_path, content, reason):
    path = tmp_path / 'bad.png'
    path.write_bytes(content)
    with pytest.raises(ImageReadError, match=reason) as info:
        read_image(path)
    assert info.value.path == str(path)


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(ImageReadError, match='nope.png'):
        read_image(tmp_path / 'nope.png')


def test_atomic_write_leaves_no_temp_files(tmp_path):
    write_image(tmp_path / 'out' / 'x.png', np.zeros((3, 3, 3), np.uint8))
    assert [p.name for p in (tmp_path / 'out').iterdir()] == ['x.png']


def test_stale_temp_files_of_a_killed_writer_are_removed_and_nothing_else(tmp_path):
    fd, stale = tempfile.mkstemp(prefix='.a.png.', suffix=TEMP_SUFFIX, dir=tmp_path)  # as atomic_write names it
    os.close(fd)
    for keep in ['.hidden.tmp', 'a.png', 'notes.tmp']:
        (tmp_path / keep).write_bytes(b'x')
    assert [p.name for p in remove_stale_temp_files(tmp_path)] == [os.path.basename(stale)]
    assert sorted(os.listdir(tmp_path)) == ['.hidden.tmp', 'a.png', 'notes.tmp']


def test_png_params_validate_the_level():
    assert png_params(3) == [cv2.IMWRITE_PNG_COMPRESSION, 3] and png_params(None) == []
    with pytest.raises(ValueError, match='0..9'):
        png_params(10)


def test_write_without_fsync_is_still_complete(tmp_path):
    img = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    write_image(tmp_path / 'a.png', img, fsync=False)
    np.testing.assert_array_equal(read_image(tmp_path / 'a.png'), img)
    assert os.listdir(tmp_path) == ['a.png']


def test_atomic_write_gives_the_usual_file_mode(tmp_path):
    """Outputs are readable like any file written with open(), not owner-only like mkstemp's."""
    import os

    umask = os.umask(0o022)
    try:
        write_image(tmp_path / 'x.png', np.zeros((3, 3), np.uint8))
    finally:
        os.umask(umask)
    assert (tmp_path / 'x.png').stat().st_mode & 0o777 == 0o644
