"""Models given by Hugging Face hub id: the local cache first, one quick question to the hub before a download.

diffusers and transformers load a hub id by asking huggingface.co for every file, even when the model is in the
local cache. Without a network that costs each load ~25 s of retries ("Retrying in 8s [Retry 4/5]") before they
fall back to the cache, and when the model is not cached they end with "does not appear to have a file named
model_index.json", which sends people to check a correct id. So a render:

- loads a model that is in the cache from the cache, without the network (:func:`in_cache`, then the library's
  ``local_files_only=True``); a cache that lacks some files falls back to the normal load;
- before downloading, asks the hub about the id once, with a short timeout (:func:`check_downloadable`): no
  network, an id that does not exist and a gated model each get their own error at once, with what to do.

``HF_HUB_OFFLINE=1`` (:func:`offline`) skips both: everything comes from the cache, and the libraries' own offline
errors are turned into ours by the loaders.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

from animator.errors import AnimatorError

T = TypeVar("T")

__all__ = ["offline", "in_cache", "check_downloadable", "unreachable", "load_by_id"]

# how long the one question to the hub may take: a connected machine answers in well under a second
_TIMEOUT_S = 10.0


def offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` asks for no network at all."""
    from huggingface_hub import constants

    flag = os.environ.get("HF_HUB_OFFLINE", "")
    return bool(constants.HF_HUB_OFFLINE) or flag.upper() in ("1", "ON", "YES", "TRUE")


def in_cache(repo_id: str, filename: str) -> bool:
    """Whether ``filename`` of ``repo_id`` (its main revision) is in the local Hugging Face cache."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, filename)
    except Exception:  # a malformed id or an odd cache layout: not cached, as far as we can tell
        return False
    return isinstance(found, str)


def unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) says the network or the hub could not be reached."""
    network_errors = {
        "ConnectError",
        "ConnectionError",
        "ConnectTimeout",
        "NetworkError",
        "TimeoutException",
        "Timeout",
        "ReadTimeout",
        "OfflineModeIsEnabled",
        "ProxyError",
        "SSLError",
    }
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if network_errors & {cls.__name__ for cls in type(exc).__mro__}:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def check_downloadable(repo_id: str, *, what: str, field: str) -> None:
    """Raise a clear :class:`AnimatorError` when ``repo_id`` cannot be downloaded: no network, no such model on
    huggingface.co, or a gated one without access. Any other answer (including errors this cannot judge, such as
    a busy server) lets the download go ahead and report for itself.

    ``what`` names the model in messages ("model", "depth model", "VAE"); ``field``: the keyframe-file field.
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:
        HfApi().model_info(repo_id, timeout=_TIMEOUT_S)
    except GatedRepoError as exc:  # (a kind of RepositoryNotFoundError: checked first)
        raise AnimatorError(
            f"{what} {repo_id!r} is gated on huggingface.co: its files need an account that accepted its licence",
            field=field,
            hint=f"accept it at https://huggingface.co/{repo_id}, then log in once with `hf auth login`",
        ) from exc
    except RepositoryNotFoundError as exc:
        raise AnimatorError(
            f"there is no {what} {repo_id!r} on huggingface.co (or it is private)",
            field=field,
            hint="check the spelling (owner/name, as in the model page's address); private models need `hf auth login`",
        ) from exc
    except Exception as exc:
        if unreachable(exc):
            raise AnimatorError(
                f"{what} {repo_id!r} is not in this machine's Hugging Face cache, and huggingface.co cannot be "
                f"reached to download it ({type(exc).__name__}: {_first_line(exc)})",
                field=field,
                hint=f"connect to the internet for the first run (the download is kept in ~/.cache/huggingface/hub "
                f"and later runs work offline), or run `hf download {repo_id}` on a machine that is online "
                "and copy that cache folder here, or give a local folder instead of the id",
            ) from exc
        # anything else: the download itself will say what is wrong


def load_by_id(repo_id: str, marker: str, load: Callable[[bool], T], *, what: str, field: str) -> T:
    """``load(local_files_only)`` for a model given by hub id, the way this module's docstring says.

    ``marker``: a file every download of the model has (``model_index.json``, ``config.json``): when the cache holds
    it, ``load(True)`` runs first; when that fails for want of files (any error but an :class:`AnimatorError` of our
    own without a cause, which refuses the model itself), ``load(False)`` downloads what is missing. Offline
    (``HF_HUB_OFFLINE``) only ``load(True)`` runs.
    """
    if offline():
        return load(True)
    if in_cache(repo_id, marker):
        try:
            return load(True)
        except AnimatorError as exc:
            if exc.__cause__ is None:  # refused as a model (wrong kind, unsupported): downloading would not help
                raise
        except Exception:
            pass  # files missing from the cache: the load below downloads them
    else:
        check_downloadable(repo_id, what=what, field=field)
    return load(False)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else "no details"
