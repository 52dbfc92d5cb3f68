"""What the bundled galaxies' known labels say about their answers in the GZ2 and GZ DECaLS trees.

The demo simulates volunteers from these "true walks" (mlcore.votes.simulated). Each function maps one kind of known
label to the answers it implies; questions it says nothing about are left out, and simulated volunteers answer those
uniformly.
"""

# Galaxy10 DECaLS classes were selected from GZ DECaLS votes, so each class implies a path through that tree.
GALAXY10_TO_GZ_DECALS = {
    "0": {"smooth-or-featured": "featured-or-disk", "disk-edge-on": "no", "merging": "minor-disturbance"},
    "1": {"smooth-or-featured": "featured-or-disk", "disk-edge-on": "no", "merging": "merger"},
    "2": {"smooth-or-featured": "smooth", "how-rounded": "round", "merging": "none"},
    "3": {"smooth-or-featured": "smooth", "how-rounded": "in-between", "merging": "none"},
    "4": {"smooth-or-featured": "smooth", "how-rounded": "cigar-shaped", "merging": "none"},
    "5": {"smooth-or-featured": "featured-or-disk", "disk-edge-on": "no", "bar": "strong",
          "has-spiral-arms": "yes", "merging": "none"},
    "6": {"smooth-or-featured": "featured-or-disk", "disk-edge-on": "no", "bar": "no", "has-spiral-arms": "yes",
          "spiral-winding": "tight", "merging": "none"},
    "7": {"smooth-or-featured": "featured-or-disk", "disk-edge-on": "no", "bar": "no", "has-spiral-arms": "yes",
          "spiral-winding": "loose", "merging": "none"},
    "8": {"smooth-or-featured": "featured-or-disk", "disk-edge-on": "yes", "edge-on-bulge": "none",
          "merging": "none"},
    "9": {"smooth-or-featured": "featured-or-disk", "disk-edge-on": "yes", "edge-on-bulge": "rounded",
          "merging": "none"},
}

# The Galaxy Zoo SDSS example tree numbers its questions 0..10 in the order of the GZ2 tree's task ids below;
# index 5 ("anything odd?") has no example images.
SLOAN_QUESTION_TO_GZ2 = {
    0: "t01_smooth_or_features", 1: "t02_edgeon", 2: "t03_bar", 3: "t04_spiral", 4: "t05_bulge_prominence",
    5: "t06_odd", 6: "t08_odd_feature", 7: "t07_rounded", 8: "t09_bulge_shape", 9: "t10_arms_winding",
    10: "t11_arms_number",
}

# The answers that lead to each GZ2 question, so that an example of a deep answer is reached by the volunteers.
_GZ2_PATH_TO = {
    "t01_smooth_or_features": {},
    "t02_edgeon": {"t01_smooth_or_features": "a02_features_or_disk"},
    "t03_bar": {"t01_smooth_or_features": "a02_features_or_disk", "t02_edgeon": "a05_no"},
    "t04_spiral": {"t01_smooth_or_features": "a02_features_or_disk", "t02_edgeon": "a05_no"},
    "t05_bulge_prominence": {"t01_smooth_or_features": "a02_features_or_disk", "t02_edgeon": "a05_no"},
    "t06_odd": {},
    "t07_rounded": {"t01_smooth_or_features": "a01_smooth"},
    "t08_odd_feature": {"t06_odd": "a14_yes"},
    "t09_bulge_shape": {"t01_smooth_or_features": "a02_features_or_disk", "t02_edgeon": "a04_yes"},
    "t10_arms_winding": {"t01_smooth_or_features": "a02_features_or_disk", "t02_edgeon": "a05_no",
                         "t04_spiral": "a08_spiral"},
    "t11_arms_number": {"t01_smooth_or_features": "a02_features_or_disk", "t02_edgeon": "a05_no",
                        "t04_spiral": "a08_spiral"},
}


def gz2_truth_for_example(question_key: str, answer_key: str) -> dict[str, str]:
    """The GZ2 answers implied by "this galaxy is the example of ``answer_key`` to ``question_key``"."""
    return {**_GZ2_PATH_TO[question_key], question_key: answer_key}


def gz2_truth_from_class_string(gz2class: str) -> dict[str, str]:
    """The GZ2 answers a gz2class string (Willett et al. 2013, section 8) encodes: Er, Ei, Ec; Ser, Seb, Sen;
    S + bulge letter a-d + optional B (bar) + optional arm number (1-4, + for more, ? for can't tell) and winding
    (t, m, l). Odd-feature suffixes in parentheses are ignored.

    Raises:
        ValueError: for a string that starts with neither E nor S.
    """
    text = gz2class.split("(")[0].strip()
    if text.startswith("E"):
        rounded = {"r": "a16_completely_round", "i": "a17_in_between", "c": "a18_cigar_shaped"}
        truth = {"t01_smooth_or_features": "a01_smooth"}
        if len(text) > 1 and text[1] in rounded:
            truth["t07_rounded"] = rounded[text[1]]
        return truth
    if not text.startswith("S"):
        raise ValueError(f"{gz2class!r} is not a GZ2 class string")
    truth = {"t01_smooth_or_features": "a02_features_or_disk"}
    if text.startswith("Se"):
        truth["t02_edgeon"] = "a04_yes"
        shapes = {"r": "a25_rounded", "b": "a26_boxy", "n": "a27_no_bulge"}
        if len(text) > 2 and text[2] in shapes:
            truth["t09_bulge_shape"] = shapes[text[2]]
        return truth
    truth["t02_edgeon"] = "a05_no"
    truth["t03_bar"] = "a06_bar" if "B" in text else "a07_no_bar"
    bulges = {"a": "a13_dominant", "b": "a12_obvious", "c": "a11_just_noticeable", "d": "a10_no_bulge"}
    arms = {"1": "a31_1", "2": "a32_2", "3": "a33_3", "4": "a34_4", "+": "a36_more_than_4", "?": "a37_cant_tell"}
    winding = {"t": "a28_tight", "m": "a29_medium", "l": "a30_loose"}
    rest = text[1:].replace("B", "")
    if rest[:1] in bulges:
        truth["t05_bulge_prominence"] = bulges[rest[0]]
        rest = rest[1:]
    truth["t04_spiral"] = "a08_spiral"
    if rest[:1] in arms:
        truth["t11_arms_number"] = arms[rest[0]]
        rest = rest[1:]
    if rest[:1] in winding:
        truth["t10_arms_winding"] = winding[rest[0]]
    return truth
