"""Face enhancement (``--face_enhance``, extra ``face``): GFPGAN on detected faces, the Upsampler
for the rest of the picture.

Unlike the official helper, every weight lives in an explicit cache folder (never the current
directory), a missing weight offline is a clear error naming the file and URL, and gray,
BGRA and 16-bit images work: faces are restored on an 8-bit BGR copy and pasted onto the
upsampled background, which keeps its kind (gray, BGR, BGRA), bit depth and exact values outside
the face masks (the official helper turned a 16-bit picture with a face into 8-bit levels);
alpha comes from the Upsampler. GFPGAN's own ``GFPGANer`` with :class:`RealESRGANer` as its
``bg_upsampler`` also works (``paste_faces_keeping_background`` restores its precision).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from realesrgan_plugin.core.img_io import max_value
from realesrgan_plugin.inference import zoo
from realesrgan_plugin.inference.upsampler import Upsampler

import cv2
import numpy as np
import torch

GFPGAN_OFFICIAL_KWARGS: dict[str, Any] = dict(
    out_size=512,
    num_style_feat=512,
    channel_multiplier=2,
    decoder_load_path=None,
    fix_decoder=False,
    num_mlp=8,
    input_is_latent=True,
    different_w=True,
    narrow=1,
    sft_half=True,
)


@dataclass(frozen=True)
class FaceWeights:
    filename: str
    url: str
    sha256: str | None


GFPGAN_WEIGHTS = FaceWeights(
    'GFPGANv1.3.pth',
    'https://github.com/TencentARC/GFPGAN/releases/download/v1.3.0/GFPGANv1.3.pth',
    'c953a88f2727c85c3d9ae72e2bd4846bbaf59fe6972ad94130e23e7017524a70',
)
# facexlib's own file names: facexlib finds them in the folder we pass and then downloads nothing.
DETECTOR_WEIGHTS = {
    'retinaface_resnet50': FaceWeights(
        'detection_Resnet50_Final.pth',
        'https://github.com/xinntao/facexlib/releases/download/v0.1.0/detection_Resnet50_Final.pth',
        None,
    ),
    'retinaface_mobile0.25': FaceWeights(
        'detection_mobilenet0.25_Final.pth',
        'https://github.com/xinntao/facexlib/releases/download/v0.1.0/detection_mobilenet0.25_Final.pth',
        None,
    ),
}
PARSING_WEIGHTS = FaceWeights(
    'parsing_parsenet.pth', 'https://github.com/xinntao/facexlib/releases/download/v0.2.2/parsing_parsenet.pth', None
)


class FaceWeightsMissingError(RuntimeError):
    """A face model weight is not in the cache and could not be downloaded."""


def face_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    return zoo.cache_dir(cache_dir) / 'face'


def ensure_weight(item: FaceWeights, folder: Path, allow_download: bool) -> Path:
    """Path of ``item`` in ``folder``; downloaded atomically (sha256-checked) when allowed."""
    target = folder / item.filename
    if target.is_file():
        return target
    if not allow_download:
        raise FaceWeightsMissingError(
            f'Face enhancement needs {item.filename} in {folder} (downloads disabled); get it from {item.url}'
        )
    try:
        return zoo.download_entry(zoo.ZooEntry(item.filename, item.url, item.sha256, 'face model'), folder)
    except RuntimeError as err:
        raise FaceWeightsMissingError(
            f'Face enhancement needs {item.filename} in {folder} and it could not be downloaded '
            f'from {item.url} ({err}); put the file there to work offline'
        ) from err


class FaceEnhancer:
    """GFPGAN face restoration with the Upsampler as background upsampler.

    Args:
        upsampler: upscales the whole picture (the background).
        outscale: final scale (default: the upsampler's).
        cache_dir: weights folder root (faces use ``<cache>/face``); never the cwd.
        gfpgan_path: GFPGAN weights (default ``<cache>/face/GFPGANv1.3.pth``).
        gfpgan_kwargs: GFPGANv1Clean constructor arguments (default: the official v1.3 ones).
        det_model / use_parse: facexlib detector name and whether to use face parsing for the paste mask.
        weight: GFPGAN's restoration weight. only_center_face: restore only the face nearest the centre.
    """

    def __init__(
        self,
        upsampler: Upsampler,
        outscale: float | None = None,
        cache_dir: str | os.PathLike | None = None,
        gfpgan_path: str | os.PathLike | None = None,
        gfpgan_kwargs: Mapping[str, Any] | None = None,
        det_model: str = 'retinaface_resnet50',
        use_parse: bool = True,
        allow_download: bool = True,
        weight: float = 0.5,
        only_center_face: bool = False,
    ) -> None:
        try:
            from facexlib.utils.face_restoration_helper import FaceRestoreHelper
            from gfpgan.archs.gfpganv1_clean_arch import GFPGANv1Clean
        except ImportError as err:
            raise ImportError('Face enhancement needs the "face" extra: pip install realesrgan-plugin[face]') from err
        if det_model not in DETECTOR_WEIGHTS:
            raise ValueError(f'det_model must be one of {sorted(DETECTOR_WEIGHTS)}, got {det_model!r}')
        self.upsampler = upsampler
        self.outscale = float(outscale or upsampler.scale)
        self.weight = weight
        self.only_center_face = only_center_face
        self.device = upsampler.device
        folder = face_cache_dir(cache_dir)
        gfpgan_file = Path(gfpgan_path) if gfpgan_path else ensure_weight(GFPGAN_WEIGHTS, folder, allow_download)
        if not gfpgan_file.is_file():
            raise FaceWeightsMissingError(f'GFPGAN weights not found: {gfpgan_file}')
        ensure_weight(DETECTOR_WEIGHTS[det_model], folder, allow_download)
        ensure_weight(PARSING_WEIGHTS, folder, allow_download)  # facexlib loads it even when use_parse=False
        self.helper = FaceRestoreHelper(
            self.outscale,
            face_size=512,
            crop_ratio=(1, 1),
            det_model=det_model,
            save_ext='png',
            use_parse=use_parse,
            device=self.device,
            model_rootpath=os.fspath(folder),
        )
        from realesrgan_plugin.inference.weights import read_state_dict

        self.gfpgan = GFPGANv1Clean(**{**GFPGAN_OFFICIAL_KWARGS, **(gfpgan_kwargs or {})})
        self.gfpgan.load_state_dict(read_state_dict(gfpgan_file), strict=True)
        self.gfpgan.eval().requires_grad_(False).to(self.device)

    @torch.inference_mode()
    def restore_face(self, face_bgr: np.ndarray) -> np.ndarray:
        """One aligned 512x512 BGR uint8 face crop -> restored crop (same kind)."""
        x = torch.from_numpy(face_bgr[:, :, ::-1].astype(np.float32) / 255.0).permute(2, 0, 1)[None]
        x = ((x - 0.5) / 0.5).to(self.device)
        out = self.gfpgan(x, return_rgb=False, weight=self.weight)[0]
        out = ((out[0].float().clamp(-1, 1) + 1) / 2).permute(1, 2, 0).cpu().numpy()[:, :, ::-1]
        return np.rint(out * 255).astype(np.uint8)

    def enhance(self, img: np.ndarray) -> np.ndarray:
        """Upscale ``img`` (any kind the Upsampler takes) by ``outscale`` with faces restored."""
        img = Upsampler.check_image(img)
        background = self.upsampler.enhance(img, outscale=self.outscale)
        bgr8 = _to_bgr8(img)
        helper = self.helper
        helper.clean_all()
        helper.read_image(bgr8)
        helper.get_face_landmarks_5(only_center_face=self.only_center_face, eye_dist_threshold=5)
        helper.align_warp_face()
        if not helper.cropped_faces:
            return background
        for face in helper.cropped_faces:
            helper.add_restored_face(self.restore_face(face))
        helper.get_inverse_affine(None)
        return paste_faces_keeping_background(helper, background)


def paste_faces_keeping_background(helper: Any, background: np.ndarray) -> np.ndarray:
    """Paste ``helper``'s restored faces onto ``background`` (gray / BGR / BGRA, uint8 or uint16)
    and keep the background's kind and precision outside the face masks.

    facexlib blends linearly, ``out = faces + keep * background``, but casts its result to 8 bit
    (16 bit only when a pixel exceeds 256): the official pipeline, and this one before, turned a
    whole 16-bit picture into 8-bit levels as soon as one face was found. Pasting onto black and
    onto white gives ``faces`` and ``keep``; the blend is then redone on the precise background.
    Alpha is the background's. Works for ``GFPGANer.face_helper`` too: ``enhance(img, paste_back=False)``,
    then ``face_helper.get_inverse_affine(None)`` (facexlib's own paste shifts the matrices in place).
    """
    peak = max_value(background)
    h, w = background.shape[:2]
    saved = [m.copy() for m in helper.inverse_affine_matrices]  # facexlib shifts them in place

    def paste_onto(level: int) -> np.ndarray:
        helper.inverse_affine_matrices = [m.copy() for m in saved]
        out = helper.paste_faces_to_input_image(upsample_img=np.full((h, w, 3), level, np.uint8))
        out = out.astype(np.float32)
        if out.shape[:2] != (h, w):  # facexlib rounds the size its own way
            out = cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR)
        return out

    faces = paste_onto(0)
    keep = (paste_onto(255) - faces) / 255.0
    helper.inverse_affine_matrices = saved
    color = background if background.ndim == 2 else background[:, :, :3]
    color3 = np.repeat(color[:, :, None], 3, axis=2) if color.ndim == 2 else color
    blended = faces * (peak / 255.0) + keep * color3.astype(np.float32)
    if color.ndim == 2:
        blended = cv2.cvtColor(blended, cv2.COLOR_BGR2GRAY)
    out = np.clip(np.rint(blended), 0, peak).astype(background.dtype)
    untouched = (keep >= 1.0).all(axis=2) & (faces <= 0).all(axis=2)
    out[untouched] = color[untouched]  # bit-exact background outside every face mask
    if background.ndim == 3 and background.shape[2] == 4:
        return np.dstack([out, background[:, :, 3]])
    return out


def _to_bgr8(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint16:
        img = np.rint(img / 257.0).astype(np.uint8)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    return np.ascontiguousarray(img[:, :, :3])
