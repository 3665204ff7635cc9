"""animator.cache: keys, atomic entries, and a cache that is off or cannot be written."""

import numpy as np

from animator import cache


def test_keys_depend_on_every_part_in_order():
    assert cache.key("a", b"bc", 1) == cache.key("a", b"bc", 1)
    assert (
        len(
            {
                cache.key("ab", "c"),
                cache.key("a", "bc"),
                cache.key("c", "ab"),
                cache.key("ab", "c", 0.0),
                cache.key(b"ab", "c"),
            }
        )
        == 5
    )


def test_entries_round_trip_and_are_plain_arrays(tmp_path, monkeypatch):
    monkeypatch.setenv("ANIMATOR_CACHE_DIR", str(tmp_path))
    arrays = {"curve": np.linspace(0, 1, 7), "count": np.int64(3)}
    cache.save("kind", "abc", arrays)
    loaded = cache.load("kind", "abc")
    assert loaded.keys() == arrays.keys() and np.array_equal(loaded["curve"], arrays["curve"])
    assert int(loaded["count"]) == 3 and cache.load("kind", "other") is None
    assert [p.name for p in (tmp_path / "kind").iterdir()] == ["abc.npz"]  # no temporary file left
    # an entry holding a pickled object is refused, not run
    np.savez(tmp_path / "kind" / "evil.npz", thing=np.array([object()], dtype=object))
    assert cache.load("kind", "evil") is None


def test_off_or_unwritable_means_not_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("ANIMATOR_CACHE_DIR", "off")
    assert cache.cache_dir() is None
    cache.save("kind", "abc", {"x": np.zeros(2)})
    assert cache.load("kind", "abc") is None
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("ANIMATOR_CACHE_DIR", str(blocker / "cache"))  # its parent is a file: mkdir fails
    cache.save("kind", "abc", {"x": np.zeros(2)})  # no error: the result is only not kept
    assert cache.load("kind", "abc") is None
    monkeypatch.delenv("ANIMATOR_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir() == tmp_path / "xdg" / "animator"
