"""Dataset preparation tools on a folder with the files real datasets contain: dotted names,
names with "x4" in them, broken files, 16-bit, gray, alpha and too-small images."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from realesrgan_plugin.core.img_io import decode_image, read_image, write_image
from realesrgan_plugin.core.windows import window_starts
from realesrgan_plugin.prep import (
    create_lmdb,
    extract_subimages,
    generate_meta_info,
    generate_meta_info_pairdata,
    generate_multiscale,
    lmdb_key,
    multiscale_sizes,
    parse_meta_line,
    read_lmdb_meta_info,
    verify_lmdb,
)
from realesrgan_plugin.prep.lmdb_writer import read_lmdb_images
from realesrgan_plugin.prep.subimages import journal_path

import cv2
import lmdb
import numpy as np
import pytest
from basicsr.utils import FileClient
from basicsr.utils.registry import DATASET_REGISTRY
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
BAD = {'corrupt.png', 'empty.png', 'notes.png'}
CROP, STEP = 64, 32


def _write_odd_folder(folder: Path, photo: np.ndarray) -> dict[str, np.ndarray]:
    """Write the odd-case folder; returns the good images by file name."""
    rng = np.random.default_rng(0)
    good = {
        'photo.v2.final.png': photo[:128, :160],
        'fox4ever.png': photo[100:196, 200:300],
        '0001x4.png': photo[300:400, 50:150],
        'deep16.png': photo[:96, 256:352].astype(np.uint16) * 257 + rng.integers(0, 257, (96, 96, 3), dtype=np.uint16),
        'gray.png': cv2.cvtColor(photo[200:296, 300:420], cv2.COLOR_BGR2GRAY),
        'alpha.png': np.dstack([photo[:80, :80], np.tile(np.arange(80, dtype=np.uint8) * 3, (80, 1))]),
        'tiny.png': photo[:20, :30],
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, img in good.items():
        write_image(folder / name, img)
    encoded = (folder / 'photo.v2.final.png').read_bytes()
    (folder / 'corrupt.png').write_bytes(encoded[: len(encoded) // 3])
    (folder / 'empty.png').write_bytes(b'')
    (folder / 'notes.png').write_text('this is not an image\n')
    (folder / 'readme.txt').write_text('not an image file name either\n')
    return good


@pytest.fixture()
def odd_folder(tmp_path, astronaut_bgr):
    folder = tmp_path / 'HR'
    return folder, _write_odd_folder(folder, astronaut_bgr)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


# ---------------------------------------------------------------- sub-images


def test_window_starts_follow_official_rule_and_keep_small_sides():
    assert window_starts(128, 64, 32, 0) == [0, 32, 64]
    assert window_starts(100, 64, 32, 0) == [0, 32, 36]  # last window flush with the border
    assert window_starts(100, 64, 32, 4) == [0, 32]  # a leftover of 4 px is not above the threshold
    assert window_starts(64, 64, 32, 0) == [0]
    assert window_starts(20, 64, 32, 0) == [0]  # smaller than the crop: one window, kept whole


def test_extract_subimages_crops_good_files_and_reports_bad_ones(odd_folder, tmp_path):
    folder, good = odd_folder
    out = tmp_path / 'sub'
    report = extract_subimages(folder, out, crop_size=CROP, step=STEP, n_thread=2)

    assert {Path(p).name for p, _ in report.failed} == BAD
    assert report.exit_code == 1 and report.done == len(good)
    assert all('empty' in reason for p, reason in report.failed if p.endswith('empty.png'))
    for name, img in good.items():
        stem = name[: -len('.png')]  # dotted names and "x4" inside names are kept as they are
        rows = window_starts(img.shape[0], CROP, STEP, 0)
        cols = window_starts(img.shape[1], CROP, STEP, 0)
        index = 0
        for y in rows:
            for x in cols:
                index += 1
                crop = read_image(out / f'{stem}_s{index:03d}.png')
                assert crop.dtype == img.dtype  # 16-bit stays 16-bit, gray stays 2-D, alpha kept
                np.testing.assert_array_equal(crop, img[y : y + CROP, x : x + CROP])
        assert not (out / f'{stem}_s{index + 1:03d}.png').exists()
    np.testing.assert_array_equal(read_image(out / 'tiny_s001.png'), good['tiny.png'])
    assert not any(name.startswith(('corrupt', 'empty', 'notes')) for name in os.listdir(out))


def test_strip_scale_suffix_only_strips_a_trailing_div2k_scale(odd_folder, tmp_path):
    folder, _ = odd_folder
    out = tmp_path / 'sub'
    extract_subimages(folder, out, crop_size=CROP, step=STEP, n_thread=1, strip_scale_suffix=True)
    names = os.listdir(out)
    assert '0001_s001.png' in names and 'fox4ever_s001.png' in names
    assert not any(n.startswith('0001x4') for n in names)

    # "0001.png" next to "0001x4.png" would overwrite each other's crops: both refused, named
    write_image(folder / '0001.png', read_image(folder / '0001x4.png'))
    report = extract_subimages(folder, tmp_path / 'sub2', crop_size=CROP, step=STEP, strip_scale_suffix=True)
    collided = {Path(p).name for p, r in report.failed if 'share the name' in r}
    assert collided == {'0001.png', '0001x4.png'}


def test_rerun_skips_finished_images_and_refuses_other_settings(odd_folder, tmp_path):
    folder, good = odd_folder
    out = tmp_path / 'sub'
    extract_subimages(folder, out, crop_size=CROP, step=STEP, n_thread=1)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert all(name.endswith('.png') for name in before)  # only crops: the journal lives beside the folder
    assert os.path.isfile(journal_path(out)) and os.path.dirname(journal_path(out)) == str(tmp_path)
    (out / 'gray_s002.png').unlink()  # a lost crop makes its source image be redone

    report = extract_subimages(folder, out, crop_size=CROP, step=STEP, n_thread=1)
    assert report.skipped == len(good) - 1 and report.done == 1
    assert {p.name for p in out.iterdir()} == set(before)
    unchanged = [n for n in before if not n.startswith('gray')]
    assert all((out / n).stat().st_mtime_ns == before[n] for n in unchanged)
    with pytest.raises(ValueError, match='other settings'):
        extract_subimages(folder, out, crop_size=CROP * 2, step=STEP, n_thread=1)


# Runs a tool, but pauses for good after the N-th call of one function (in the main process) and
# says so on stdout: the test kills the job at exactly that point, with no timing race.
PAUSE_AFTER_CALLS = """
import importlib, runpy, sys, time
module_name, qualname, count, tool = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
owner = importlib.import_module(module_name)
*path, name = qualname.split('.')
for part in path:
    owner = getattr(owner, part)
original, calls = getattr(owner, name), []
def pausing(*args, **kwargs):
    result = original(*args, **kwargs)
    calls.append(1)
    if len(calls) == count:
        print('PAUSED', flush=True)
        time.sleep(3600)
    return result
setattr(owner, name, pausing)
sys.argv = [tool, *sys.argv[5:]]
runpy.run_path(tool, run_name='__main__')
"""


def _kill_mid_way(cmd: list[str], pause_after: tuple[str, str, int]) -> None:
    """Run ``cmd`` (python TOOL ARGS) in its own process group, pausing it after ``pause_after`` =
    (module, function, calls); SIGKILL the whole group once it says it has paused."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    module, function, calls = pause_after
    driver = [cmd[0], '-c', PAUSE_AFTER_CALLS, module, function, str(calls), *cmd[1:]]
    proc = subprocess.Popen(
        driver, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True
    )
    try:
        for line in proc.stdout:
            if line.strip() == 'PAUSED':
                break
        else:
            pytest.fail(f'{cmd[1]} ended (status {proc.wait()}) before the point it should be killed at')
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()


def _many_images(folder: Path, photo: np.ndarray, count: int) -> None:
    folder.mkdir()
    for i in range(count):
        write_image(folder / f'img.{i:03d}.png', np.roll(photo, 7 * i, axis=1)[:192, :192])


def test_killed_extract_resumes_to_the_same_files(tmp_path, astronaut_bgr):
    src, ref, out = tmp_path / 'src', tmp_path / 'ref', tmp_path / 'out'
    _many_images(src, astronaut_bgr, 60)
    args = ['--crop_size', '48', '--step', '16', '--compression_level', '9']
    extract_subimages(src, ref, crop_size=48, step=16, compression_level=9, n_thread=1)

    cmd = [sys.executable, 'tools/extract_subimages.py', '--input', str(src), '--output', str(out), '--n_thread', '2']
    _kill_mid_way(cmd + args, ('realesrgan_plugin.prep.subimages', '_Journal.add', 10))
    killed = _files(out)
    assert 0 < len(killed) < len(_files(ref)), 'the kill should land mid-way'

    resumed = subprocess.run(cmd + args, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True)
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert b'skipped' in resumed.stdout
    assert _files(out) == _files(ref)  # same names, same bytes; no temporary file left


# ---------------------------------------------------------------- meta info


def test_meta_info_check_leaves_out_and_reports_bad_files(odd_folder, tmp_path):
    folder, good = odd_folder
    meta = tmp_path / 'meta' / 'meta_info.txt'
    report = generate_meta_info([folder], meta, check=True, n_thread=2)
    assert meta.read_text().splitlines() == sorted(f'HR/{n}' for n in good)
    assert {Path(p).name for p, _ in report.failed} == BAD and report.exit_code == 1

    unchecked = generate_meta_info([folder], meta, roots=[folder])
    assert unchecked.ok and len(meta.read_text().splitlines()) == len(good) + len(BAD)


def test_pairs_are_matched_by_name_and_unmatched_files_reported(tmp_path, astronaut_bgr):
    gt, lq = tmp_path / 'gt', tmp_path / 'lq'
    hr = astronaut_bgr[:64, :64]
    lr = cv2.resize(hr, (16, 16), interpolation=cv2.INTER_AREA)
    for name in ['a.1.png', 'b.png', 'c.png']:
        write_image(gt / name, hr)
    for name in ['a.1x4.png', 'c.png', 'd.png']:  # sort order would pair b with c and c with d
        write_image(lq / name, lr)
    meta = tmp_path / 'pairs.txt'
    report = generate_meta_info_pairdata(gt, lq, meta, strip_scale_suffix=True, check=True, scale=4, n_thread=1)
    assert meta.read_text().splitlines() == ['gt/a.1.png, lq/a.1x4.png', 'gt/c.png, lq/c.png']
    reasons = {Path(p).name: r for p, r in report.failed}
    assert reasons == {'b.png': 'no LQ image with the same name', 'd.png': 'no GT image with the same name'}

    write_image(gt / 'e,f.png', hr)
    write_image(lq / 'e,f.png', lr)
    report = generate_meta_info_pairdata(gt, lq, meta, n_thread=1)
    assert any("containing ','" in r for p, r in report.failed if p.endswith('e,f.png'))
    (gt / 'e,f.png').unlink()

    write_image(lq / 'b.png', lr[:8])  # wrong size for x4
    report = generate_meta_info_pairdata(gt, lq, meta, strip_scale_suffix=True, check=True, scale=4, n_thread=1)
    assert any('is not 4 x the LQ size' in r for _, r in report.failed)


def test_pair_key_strips_a_div2k_scale_at_the_end_or_before_a_sub_image_index():
    from realesrgan_plugin.prep.meta_info import pair_key

    assert pair_key('lq/0001x4.png', True) == 'lq/0001'
    assert pair_key('lq/0001x4_s001.png', True) == 'lq/0001_s001'  # cropped from 0001x4.png
    assert pair_key('lq/0001x4_s001.png', False) == 'lq/0001x4_s001'


# ---------------------------------------------------------------- multiscale


def test_multiscale_matches_the_official_pillow_recipe(odd_folder, tmp_path):
    folder, good = odd_folder
    out = tmp_path / 'multiscale'
    report = generate_multiscale(folder, out, n_thread=2)
    assert {Path(p).name for p, _ in report.failed} == BAD and report.done == len(good)

    src = Image.open(folder / 'photo.v2.final.png')  # the official script's own reading and resizing
    sizes = multiscale_sizes(*src.size)
    assert sizes == [(120, 96), (80, 64), (53, 42), (500, 400)]
    for idx, size in enumerate(sizes):
        expected = np.asarray(src.resize(size, Image.Resampling.LANCZOS))[:, :, ::-1]
        np.testing.assert_array_equal(read_image(out / f'photo.v2.finalT{idx}.png'), expected)

    deep = read_image(out / 'deep16T1.png')
    assert deep.dtype == np.uint16 and deep.shape == (48, 48, 3)
    as8 = (good['deep16.png'][:, :, ::-1] // 257).astype(np.uint8)
    as8 = np.asarray(Image.fromarray(as8).resize((48, 48), Image.Resampling.LANCZOS))
    assert np.abs(deep[:, :, ::-1] / 257 - as8).mean() < 1.0  # same filter as the 8-bit path
    assert read_image(out / 'grayT3.png').shape == (400, 500)  # shortest edge 400, gray stays gray
    assert read_image(out / 'alphaT0.png').shape == (60, 60, 4)

    again = generate_multiscale(folder, out, n_thread=1)
    assert again.skipped == len(good) and again.done == 0


# ---------------------------------------------------------------- LMDB


def test_lmdb_is_read_by_basicsr_file_client(odd_folder, tmp_path):
    folder, good = odd_folder
    db = tmp_path / 'HR.lmdb'
    report = create_lmdb(folder, db, n_thread=2, verify=True, initial_map_size=1 << 16)  # the map must grow
    assert {Path(p).name for p, _ in report.failed} == BAD
    assert sorted(os.listdir(db)) == ['data.mdb', 'lock.mdb', 'meta_info.txt']

    entries = read_lmdb_meta_info(db)
    assert [e.relpath for e in entries] == sorted(good, key=lmdb_key)
    line = (db / 'meta_info.txt').read_text().splitlines()[[e.relpath for e in entries].index('gray.png')]
    assert line == 'gray.png (96,120,1) -1'
    assert parse_meta_line('my photo.v2.png (2,3,4) 1').key == 'my photo.v2'

    client = FileClient('lmdb', db_paths=[str(db)], client_keys=['gt'])
    for name, img in good.items():
        value = client.get(lmdb_key(name), 'gt')  # 'photo.v2.final', not 'photo'
        assert bytes(value) == (folder / name).read_bytes()
        decoded = decode_image(bytes(value), name)
        assert decoded.dtype == img.dtype
        np.testing.assert_array_equal(decoded, img)


def test_lmdb_reports_keys_basicsr_cannot_look_up(tmp_path, astronaut_bgr):
    write_image(tmp_path / 'src' / 'café.png', astronaut_bgr[:32, :32])
    report = create_lmdb(tmp_path / 'src', tmp_path / 'u.lmdb', n_thread=1, verify=True)
    assert report.ok and any("not ASCII, which BasicSR's FileClient cannot look up" in n for n in report.notes)
    assert read_lmdb_images(tmp_path / 'u.lmdb')[0][0] == 'café'


def test_lmdb_reencoded_and_verify_catches_a_damaged_entry(odd_folder, tmp_path):
    folder, good = odd_folder
    meta = tmp_path / 'list.txt'
    meta.write_text('photo.v2.final.png\ndeep16.png\n')
    db = tmp_path / 'part.lmdb'
    report = create_lmdb(folder, db, meta_info=meta, compress_level=0, n_thread=1, verify=True)
    assert report.ok and report.done == 2
    assert [line.split(' ')[-1] for line in (db / 'meta_info.txt').read_text().splitlines()] == ['0', '0']
    assert verify_lmdb(db, folder, n_thread=1).ok  # read in this process, then closed again

    with lmdb.open(str(db)) as env, env.begin(write=True) as txn:
        txn.put(b'deep16', (folder / 'gray.png').read_bytes())
    failed = verify_lmdb(db, folder).failed
    assert len(failed) == 1 and 'deep16.png' in failed[0][0] and 'shape' in failed[0][1]


def test_killed_lmdb_job_resumes_to_the_same_database(tmp_path, astronaut_bgr):
    src, ref, out = tmp_path / 'src', tmp_path / 'ref.lmdb', tmp_path / 'out.lmdb'
    _many_images(src, astronaut_bgr, 150)
    create_lmdb(src, ref, n_thread=1)
    cmd = [sys.executable, 'tools/create_lmdb.py', '--input', str(src), '--output', str(out)]
    cmd += ['--compress_level', '9', '--n_thread', '2', '--batch', '1']

    _kill_mid_way(cmd, ('realesrgan_plugin.prep.lmdb_writer', '_Writer.commit', 5))
    assert not (out / 'meta_info.txt').exists(), 'the kill should land mid-way'
    resumed = subprocess.run(
        [*cmd, '--verify'], cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True
    )
    assert resumed.returncode == 0, resumed.stderr.decode()
    entries = read_lmdb_meta_info(out)
    assert [e.relpath for e in entries] == [e.relpath for e in read_lmdb_meta_info(ref)]
    with lmdb.open(str(out), readonly=True, lock=False) as env:
        assert env.stat()['entries'] == len(entries) == 150
    assert not (out / 'meta_info.txt.partial').exists()


def _load_tool(tool: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(tool, REPO / 'tools' / f'{tool}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tools_exit_non_zero_naming_bad_files_after_doing_the_good_ones(odd_folder, tmp_path, capsys):
    folder, good = odd_folder
    code = _load_tool('extract_subimages').main(
        ['--input', str(folder), '--output', str(tmp_path / 'sub'), '--crop_size', '64', '--step', '32']
    )
    err = capsys.readouterr().err
    assert code == 1 and all(str(folder / name) in err for name in BAD)
    assert len(os.listdir(tmp_path / 'sub')) > len(good)

    code = _load_tool('create_lmdb').main(['--input', str(folder), '--output', str(tmp_path / 'x.lmdb'), '--verify'])
    err = capsys.readouterr().err
    assert code == 1 and all(str(folder / name) in err for name in BAD)
    assert len(read_lmdb_meta_info(tmp_path / 'x.lmdb')) == len(good)
    assert _load_tool('create_lmdb').main(['--input', str(folder), '--output', str(tmp_path / 'no_suffix')]) == 2


def _expected_rgb(img: np.ndarray) -> np.ndarray:
    """What the training loader makes of an image: CHW float RGB in [0, 1], gray expanded, alpha dropped."""
    rgb = img.astype(np.float32) / (65535 if img.dtype == np.uint16 else 255)
    rgb = np.repeat(rgb[:, :, None], 3, axis=2) if rgb.ndim == 2 else rgb[:, :, :3]
    return rgb[:, :, ::-1].transpose(2, 0, 1)


def _name_of(item_path: str, names) -> str:
    return next(n for n in names if item_path == lmdb_key(n))  # 'photo.v2.final', never 'photo'


def test_plugin_datasets_read_the_lmdb(odd_folder, tmp_path):
    folder, good = odd_folder
    gt_db, lq_db, lq_folder = tmp_path / 'gt.lmdb', tmp_path / 'lq.lmdb', tmp_path / 'lq'
    assert create_lmdb(folder, gt_db, n_thread=1).done == len(good)
    for name, img in good.items():  # same names, a quarter of the size; 16-bit, gray and alpha kept
        write_image(lq_folder / name, img[::4, ::4])
    assert create_lmdb(lq_folder, lq_db, compress_level=1, n_thread=1).ok

    # crop_pad_size above every image side: the item is the image, padded at the bottom/right
    opt = {'dataroot_gt': str(gt_db), 'io_backend': {'type': 'lmdb'}, 'use_hflip': False, 'use_rot': False}
    dataset = DATASET_REGISTRY.get('RealESRGANDataset')({**opt, 'crop_pad_size': 200})
    assert len(dataset) == len(good)
    for index in range(len(dataset)):
        item = dataset[index]
        img = good[_name_of(item['gt_path'], good)]
        h, w = img.shape[:2]
        np.testing.assert_allclose(item['gt'][:, :h, :w].numpy(), _expected_rgb(img), atol=1e-6)
    # the GT LMDB stays open in `dataset` while a second dataset reads it (train + val share LMDBs)

    paired = DATASET_REGISTRY.get('RealESRGANPairedDataset')(
        {**opt, 'dataroot_lq': str(lq_db), 'phase': 'val', 'scale': 4}
    )
    assert len(paired) == len(good)
    for index in range(len(paired)):
        item = paired[index]
        img = good[_name_of(item['gt_path'], good)]
        np.testing.assert_allclose(item['gt'].numpy(), _expected_rgb(img), atol=1e-6)
        np.testing.assert_allclose(item['lq'].numpy(), _expected_rgb(img[::4, ::4]), atol=1e-6)
    assert dataset[0]['gt'].shape[0] == 3  # the first dataset still reads after the second opened


def test_paired_dataset_reads_the_pair_file(tmp_path, astronaut_bgr):
    gt, lq = tmp_path / 'gt', tmp_path / 'lq'
    for i in range(3):
        write_image(gt / f'{i:04d}.v1.png', astronaut_bgr[i * 64 : i * 64 + 64, :64])
        write_image(lq / f'{i:04d}.v1x4.png', astronaut_bgr[i * 64 : i * 64 + 64 : 4, :64:4])
    meta = tmp_path / 'pairs.txt'
    assert generate_meta_info_pairdata(gt, lq, meta, strip_scale_suffix=True, check=True, scale=4, n_thread=1).ok
    paired = DATASET_REGISTRY.get('RealESRGANPairedDataset')(
        {'dataroot_gt': str(tmp_path), 'dataroot_lq': str(tmp_path), 'meta_info': str(meta), 'phase': 'val', 'scale': 4}
    )
    assert len(paired) == 3
    for index in range(3):
        item = paired[index]
        assert item['gt_path'].endswith(f'{index:04d}.v1.png') and item['lq_path'].endswith(f'{index:04d}.v1x4.png')
        np.testing.assert_allclose(item['lq'].numpy(), _expected_rgb(read_image(item['lq_path'])), atol=1e-6)


@pytest.mark.parametrize(
    'tool',
    [
        'extract_subimages',
        'generate_meta_info',
        'generate_meta_info_pairdata',
        'generate_multiscale_df2k',
        'create_lmdb',
    ],
)
def test_tools_parse_their_arguments(tool):
    with pytest.raises(SystemExit) as exit_info:
        _load_tool(tool).parse_args(['--help'])
    assert exit_info.value.code == 0
