#!/usr/bin/python3
"""Image-caption pairs for Wensu's two-tower (image-text) models, from Debian packages.

Two modes:

  mm_pairs.py --root ROOT --out OUT
      ROOT is the tree the packages were unpacked into (dpkg -x; scripts/data/make-mm-data.sh does
      that and calls this). Writes OUT/images/emoji/*.png, OUT/images/icon/*.png and OUT/pairs.tsv.
      Needs fontTools (Debian python3-fonttools) on the Python path.

  mm_pairs.py --fixture DIR [--data MM]
      The tiny committed test fixture (tests/data/mm/) from the full data MM (default
      ${WENSU_DATA:-~/.cache/wensu}/mm): 24 pairs (16 train, 8 test; emoji and icons of varied
      colours) shrunk to 32 x 32 RGBA PNGs, pairs.tsv, a truncated PNG (broken.png) and
      pairs_with_broken.tsv (the same pairs plus one pointing at broken.png and one at a missing
      file). Decodes, resizes and encodes with Debian's libstb (libstb0, which libstb-dev pulls
      in), the library wensu itself reads images with.

pairs.tsv: a header line "split<TAB>image<TAB>caption<TAB>source", then one pair per line: split
train or test, the image path relative to the folder of the tsv, the caption (lower case UTF-8, no
tab), and the source (emoji or icon). Every caption occurs once.

Sources:
  emoji  Noto Color Emoji (fonts-noto-color-emoji): the font's CBDT colour bitmaps are PNG files
         (136 x 128). Each fully-qualified emoji of Unicode's emoji-test.txt (unicode-data) is
         found in the font (cmap for one code point; the ccmp ligatures for sequences: flags,
         keycaps, ZWJ sequences; U+FE0F is not in the font and is dropped first). Caption = the
         CLDR short name, lower-cased, ':' and ',' removed ("flag: Japan" -> "flag japan").
         Emoji with a skin-tone modifier (U+1F3FB..1F3FF) are skipped: colour variants of one item.
  icon   Adwaita full-colour PNG icons (adwaita-icon-theme), one per icon name: the 48 x 48 one,
         else the largest at most 128, else the smallest larger one; never the '-symbolic' ones,
         and not the right-to-left mirror images ('NAME-rtl' where NAME exists too). Caption = the
         name with '-' and '_' as spaces ("user-trash" -> "user trash"). hicolor-icon-theme holds
         no PNG in Debian 12 (only the folder layout) and is searched in case a later one does.

Split, by item: a pair is in test when int(sha1(caption)) mod 100 < 10 (10% of the hash space),
in valid when it is 10 to 14 (5%: for watching a run and choosing its settings, so that test is
looked at once, at the end), else in train; so it depends only on the caption. Pairs are taken in order (emoji first, in emoji-test.txt order,
then icons by name) and a pair is dropped when an earlier one has the same caption (the icons
"battery" and "trophy" are also emoji) or the same image bytes (flags that share a design, such as
France and St. Martin; "family" and "family: man, man, boy"; icons that are copies of each other):
two captions of one picture would be false negatives in a contrastive batch, and could put one
picture on both sides of the split.
"""
import argparse
import ctypes
import ctypes.util
import hashlib
import os
import re
import shutil
import sys

SKIN_TONES = range(0x1F3FB, 0x1F400)
VS16 = 0xFE0F
HEADER = "split\timage\tcaption\tsource\n"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def fail(msg):
    sys.exit(f"mm_pairs: error: {msg}")


def say(msg):
    print(f"mm_pairs: {msg}", file=sys.stderr)


def split_of(caption):
    h = int(hashlib.sha1(caption.encode("utf-8")).hexdigest(), 16) % 100
    return "test" if h < 10 else "valid" if h < 15 else "train"


def write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


# --- emoji --------------------------------------------------------------------------------------
EMOJI_LINE = re.compile(r"^([0-9A-F]+(?: [0-9A-F]+)*)\s*; fully-qualified\s*# \S+ E\d+\.\d+ (.+)$")


def emoji_caption(name):
    return " ".join(name.lower().replace(":", " ").replace(",", " ").split())


def read_emoji_test(path):
    """[(code points, CLDR name)] of every fully-qualified emoji, in file order."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = EMOJI_LINE.match(line.rstrip("\n"))
            if m:
                out.append(([int(c, 16) for c in m.group(1).split()], m.group(2).strip()))
    if len(out) < 1000:
        fail(f"{path}: only {len(out)} fully-qualified emoji; the file's format changed")
    return out


def emoji_pngs(font_path, emoji):
    """{index in emoji: PNG bytes} of the emoji the font has, and [names] of those it lacks."""
    try:
        from fontTools.ttLib import TTFont
    except ImportError:
        fail("fontTools is not importable; put Debian python3-fonttools on PYTHONPATH "
             "(scripts/data/make-mm-data.sh does) or apt-get install python3-fonttools")
    font = TTFont(font_path)
    for table in ("cmap", "CBDT", "GSUB"):
        if table not in font:
            fail(f"{font_path} has no {table} table; expected Noto Color Emoji with CBDT colour bitmaps")
    cmap = font.getBestCmap()
    bitmaps = font["CBDT"].strikeData[0]  # one strike (109 ppem) in Noto Color Emoji
    # Sequences are ligatures of the ccmp feature: component glyphs -> the emoji's glyph.
    ligatures = {}
    for lookup in font["GSUB"].table.LookupList.Lookup:
        if lookup.LookupType != 4:
            continue
        for sub in lookup.SubTable:
            for first, ligs in sub.ligatures.items():
                for lig in ligs:
                    ligatures.setdefault(tuple([first] + list(lig.Component)), lig.LigGlyph)
    found, missing = {}, []
    for i, (cps, name) in enumerate(emoji):
        glyphs = [cmap.get(c) for c in cps if c != VS16]
        glyph = None
        if None not in glyphs:
            glyph = glyphs[0] if len(glyphs) == 1 else ligatures.get(tuple(glyphs))
        if glyph is None or glyph not in bitmaps:
            missing.append(name)
            continue
        png = bitmaps[glyph].imageData
        if not png.startswith(PNG_SIGNATURE):
            fail(f"{font_path}: the bitmap of '{name}' ({glyph}) is not a PNG; the font's format changed")
        found[i] = png
    return found, missing


# --- icons --------------------------------------------------------------------------------------
def icon_files(icon_roots):
    """{icon name: PNG path}, one per name over all themes and contexts (see the module doc)."""
    sizes = {}  # name -> [(size, path)]
    for root in icon_roots:
        if not os.path.isdir(root):
            continue
        for size_dir in sorted(os.listdir(root)):
            m = re.fullmatch(r"(\d+)x\1", size_dir)
            if not m:
                continue
            for dirpath, _, files in sorted(os.walk(os.path.join(root, size_dir))):
                for f in sorted(files):
                    if f.endswith(".png") and "symbolic" not in f:
                        sizes.setdefault(f[:-4], []).append((int(m.group(1)), os.path.join(dirpath, f)))

    def pick(cands):
        exact = [p for s, p in cands if s == 48]
        if exact:
            return exact[0]
        small = [(s, p) for s, p in cands if s <= 128]
        if small:
            return max(small, key=lambda sp: sp[0])[1]
        return min(cands, key=lambda sp: sp[0])[1]

    return {n: pick(c) for n, c in sorted(sizes.items())
            if not (n.endswith("-rtl") and n[:-4] in sizes)}


# --- build --------------------------------------------------------------------------------------
def build(root, out):
    font = os.path.join(root, "usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
    emoji_test = os.path.join(root, "usr/share/unicode/emoji/emoji-test.txt")
    icon_roots = [os.path.join(root, "usr/share/icons", t) for t in ("Adwaita", "hicolor")]
    for p in (font, emoji_test, icon_roots[0]):
        if not os.path.exists(p):
            fail(f"{p} is missing: the package layout changed; update this script's paths")

    images = os.path.join(out, "images")
    shutil.rmtree(images, ignore_errors=True)
    os.makedirs(os.path.join(images, "emoji"))
    os.makedirs(os.path.join(images, "icon"))

    rows, seen_captions, seen_images = [], set(), set()
    dropped = {"emoji": [0, 0], "icon": [0, 0]}  # source -> [same caption, same image]

    def add(caption, rel, source, png):
        if "\t" in caption or "\n" in caption or not caption:
            fail(f"caption {caption!r} ({rel}) is empty or holds a tab or newline")
        digest = hashlib.sha1(png).digest()
        if caption in seen_captions or digest in seen_images:
            dropped[source][0 if caption in seen_captions else 1] += 1
            return
        seen_captions.add(caption)
        seen_images.add(digest)
        write_atomic(os.path.join(out, rel), png)
        rows.append((split_of(caption), rel, caption, source))

    emoji = read_emoji_test(emoji_test)
    kept = [(cps, name) for cps, name in emoji if not any(c in SKIN_TONES for c in cps)]
    pngs, missing = emoji_pngs(font, kept)
    say(f"emoji: {len(emoji)} fully-qualified in emoji-test.txt, {len(emoji) - len(kept)} with a skin tone "
        f"skipped, {len(pngs)} of the other {len(kept)} found in the font")
    if missing:
        say(f"emoji not in the font ({len(missing)}): {', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}")
    for i, (cps, name) in enumerate(kept):
        if i in pngs:
            rel = "images/emoji/" + "-".join(f"{c:x}" for c in cps) + ".png"
            add(emoji_caption(name), rel, "emoji", pngs[i])

    icons = icon_files(icon_roots)
    say(f"icons: {len(icons)} full-colour icon names")
    for name, src in icons.items():
        caption = " ".join(name.replace("-", " ").replace("_", " ").split()).lower()
        with open(src, "rb") as f:
            add(caption, f"images/icon/{name}.png", "icon", f.read())

    tsv = HEADER + "".join("\t".join(r) + "\n" for r in rows)
    write_atomic(os.path.join(out, "pairs.tsv"), tsv.encode("utf-8"))
    return rows, dropped


def counts_table(rows, dropped=None):
    """Pairs per source and split; with `dropped`, the pairs left out for a caption or an image
    that an earlier pair already has."""
    head = f"{'source':<8} {'train':>7} {'test':>7} {'total':>7}"
    lines = [head + (f" {'same caption':>13} {'same image':>11}" if dropped else "")]
    for source in ("emoji", "icon", "all"):
        sel = [r for r in rows if source == "all" or r[3] == source]
        n_train = sum(r[0] == "train" for r in sel)
        line = f"{source:<8} {n_train:>7,} {len(sel) - n_train:>7,} {len(sel):>7,}"
        if dropped:
            d = [sum(v[k] for v in dropped.values()) for k in (0, 1)] if source == "all" else dropped[source]
            line += f" {d[0]:>13,} {d[1]:>11,}"
        lines.append(line)
    return "\n".join(lines) + "\n"


# --- fixture (Debian's libstb through ctypes) --------------------------------------------------
class Stb:
    EDGE_CLAMP, FILTER_DEFAULT, COLORSPACE_LINEAR = 1, 0, 0

    def __init__(self):
        name = ctypes.util.find_library("stb") or "libstb.so.0"
        try:
            self.lib = ctypes.CDLL(name)
        except OSError:
            fail("Debian's libstb is not installed (apt-get install libstb-dev, or run scripts/setup.sh)")
        L, u8p, ip = self.lib, ctypes.POINTER(ctypes.c_ubyte), ctypes.POINTER(ctypes.c_int)
        L.stbi_load_from_memory.restype = u8p
        L.stbi_load_from_memory.argtypes = [ctypes.c_char_p, ctypes.c_int, ip, ip, ip, ctypes.c_int]
        L.stbi_image_free.argtypes = [ctypes.c_void_p]
        L.stbi_failure_reason.restype = ctypes.c_char_p
        L.stbir_resize_uint8_generic.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                                 ctypes.c_char_p, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                                 ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                                 ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
        L.stbi_write_png.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_char_p,
                                     ctypes.c_int]
        ctypes.c_int.in_dll(L, "stbi_write_png_compression_level").value = 9

    def load_rgba(self, path):
        """(width, height, RGBA bytes) of an image file."""
        data = open(path, "rb").read()
        w, h, n = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
        p = self.lib.stbi_load_from_memory(data, len(data), ctypes.byref(w), ctypes.byref(h), ctypes.byref(n), 4)
        if not p:
            fail(f"{path}: stb_image cannot decode it ({self.lib.stbi_failure_reason().decode()})")
        px = ctypes.string_at(p, w.value * h.value * 4)
        self.lib.stbi_image_free(p)
        return w.value, h.value, px

    def square_rgba(self, path, size):
        """The image padded with transparent pixels to a centred square and resized to size x size
        (alpha-weighted, as stb_image_resize does with an alpha channel), RGBA bytes."""
        w, h, px = self.load_rgba(path)
        s = max(w, h)
        x0, y0 = (s - w) // 2, (s - h) // 2
        sq = bytearray(s * s * 4)
        for y in range(h):
            sq[((y + y0) * s + x0) * 4:((y + y0) * s + x0 + w) * 4] = px[y * w * 4:(y + 1) * w * 4]
        out = ctypes.create_string_buffer(size * size * 4)
        ok = self.lib.stbir_resize_uint8_generic(bytes(sq), s, s, 0, out, size, size, 0, 4, 3, 0, self.EDGE_CLAMP,
                                                 self.FILTER_DEFAULT, self.COLORSPACE_LINEAR, None)
        if not ok:
            fail(f"{path}: stb_image_resize failed")
        return out.raw

    def write_png(self, path, size, rgba):
        if not self.lib.stbi_write_png(path.encode(), size, size, 4, rgba, size * 4):
            fail(f"cannot write {path}")


def mean_colour(stb, path):
    """Mean RGB of the image composited over white, in [0, 1]."""
    w, h, px = stb.load_rgba(path)
    tot = [0.0, 0.0, 0.0]
    for i in range(0, len(px), 4):
        a = px[i + 3] / 255.0
        for c in range(3):
            tot[c] += a * px[i + c] / 255.0 + (1.0 - a)
    return [t / (w * h) for t in tot]


def read_pairs(tsv):
    with open(tsv, encoding="utf-8") as f:
        if f.readline() != HEADER:
            fail(f"{tsv}: the first line is not the header {HEADER!r}")
        return [tuple(line.rstrip("\n").split("\t")) for line in f]


def fixture(data, out, size=32):
    """The committed fixture: see the module doc. Deterministic for the same data."""
    tsv = os.path.join(data, "pairs.tsv")
    if not os.path.isfile(tsv):
        fail(f"{tsv} not found: build the data first with scripts/data/make-mm-data.sh")
    rows = read_pairs(tsv)
    stb = Stb()
    # Short plain captions (ASCII, at most three words) that a tiny test tokenizer handles easily.
    quotas = {("train", "emoji"): 10, ("train", "icon"): 6, ("test", "emoji"): 5, ("test", "icon"): 3}
    chosen = []
    for (split, source), n in quotas.items():
        cands = sorted((r for r in rows if r[0] == split and r[3] == source
                        and r[2].isascii() and len(r[2].split()) <= 3),
                       key=lambda r: hashlib.sha1(r[2].encode()).hexdigest())
        cands = cands[:400]  # enough variety; keeps the colour scan quick
        colours = {r: mean_colour(stb, os.path.join(data, r[1])) for r in cands}
        # Farthest-point sampling in mean colour from the first candidate: varied colours.
        pick = [cands[0]]
        while len(pick) < n:
            def dist(r):
                return min(sum((a - b) ** 2 for a, b in zip(colours[r], colours[q])) for q in pick)
            pick.append(max((r for r in cands if r not in pick), key=dist))
        chosen += pick
    chosen.sort(key=lambda r: (r[0] != "train", r[3], r[2]))

    shutil.rmtree(os.path.join(out, "images"), ignore_errors=True)
    for source in ("emoji", "icon"):
        os.makedirs(os.path.join(out, "images", source))
    fixture_rows = []
    for split, rel, caption, source in chosen:
        name = f"images/{source}/{os.path.basename(rel)}"
        stb.write_png(os.path.join(out, name), size, stb.square_rgba(os.path.join(data, rel), size))
        fixture_rows.append((split, name, caption, source))
    lines = ["\t".join(r) + "\n" for r in fixture_rows]
    write_atomic(os.path.join(out, "pairs.tsv"), (HEADER + "".join(lines)).encode("utf-8"))

    # broken.png: the first fixture image cut in half (a PNG whose pixel data stops early).
    first = open(os.path.join(out, fixture_rows[0][1]), "rb").read()
    write_atomic(os.path.join(out, "broken.png"), first[:len(first) // 2])
    broken = lines + ["train\tbroken.png\tbroken picture\ticon\n", "train\tmissing.png\tmissing picture\temoji\n"]
    write_atomic(os.path.join(out, "pairs_with_broken.tsv"), (HEADER + "".join(broken)).encode("utf-8"))
    return fixture_rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", help="the unpacked packages (dpkg -x tree)")
    ap.add_argument("--out", help="the data folder to write (images/, pairs.tsv)")
    ap.add_argument("--fixture", metavar="DIR", help="write the small test fixture into DIR instead")
    ap.add_argument("--data", help="--fixture: the full data (default ${WENSU_DATA:-~/.cache/wensu}/mm)")
    args = ap.parse_args()
    if args.fixture:
        data = args.data or os.path.join(os.environ.get("WENSU_DATA") or os.path.expanduser("~/.cache/wensu"), "mm")
        os.makedirs(args.fixture, exist_ok=True)
        rows = fixture(data, args.fixture)
        sys.stderr.write(counts_table(rows))
        say(f"fixture written to {args.fixture}")
        return
    if not args.root or not args.out:
        ap.error("give --root and --out (build the data), or --fixture DIR")
    rows, dropped = build(args.root, args.out)
    if not rows:
        fail("no pairs written")
    sys.stderr.write(counts_table(rows, dropped))


if __name__ == "__main__":
    main()
