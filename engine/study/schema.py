"""The study file's sections as dataclasses, with the paper's defaults (pure Python, no torch)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from stylestudy.engine.study.layer_names import PAPER_STYLE_LAYERS as _PAPER_STYLE

PAPER_STYLE_LAYERS = list(_PAPER_STYLE)
PAPER_SCALE = [
    "Style not transferred",
    "Transferred excessively or very weakly",
    "Somewhat weak or slightly exaggerated",
    "Transferred well",
    "Transferred very well",
]
METHODS = ("baseline", "normalized")
PROTOCOLS = ("paired", "acr", "pairwise")
RESUME_POLICIES = ("cookie", "cookie_or_session")  # what a returning participant must present
PAIRWISE_LAYOUTS = ("side_by_side", "sequential")
PAIRWISE_SAMPLING = ("balanced", "adaptive")
# adaptive: the methods' scores (default) | every item's | the order | the order and the methods' scores
ADAPTIVE_TARGETS = ("methods", "items", "ranking", "ranking+methods")
PAIRWISE_QUESTION = "Which image transfers the style better?"
PARTICIPANT_TITLE = "Image rating study"  # neutral: names no method, condition or hypothesis
DISPLAY_MODES = ("native", "device", "fit", "scale_down")  # 1:1 CSS px | 1:1 device px | 70% of the window | 1:1 or smaller
P910_ACR_SCALE = ["Bad", "Poor", "Fair", "Good", "Excellent"]  # ITU-T P.910 ACR, ratings 1..5
ACR_QUESTION = "How good is the quality of this image?"
REFERENCE_KINDS = ("style", "content")  # images shown beside the stimuli, never rated
LANGUAGES = ("en", "ko")
SWEEPS = ("lambda_os", "layer_boost", "size")
MIN_SIZE = 16  # px: VGG-19 pools 4 times before relu5_x


def key(help: str, default: Any = None, *, factory: Callable[[], Any] | None = None, choices: tuple = (),
        positive: bool = False, empty_means_default: bool = False, required: bool = False) -> Any:
    """A study-file key declared once: its default, the values it allows and what it is for.
    The reader (``studyfile``), the manifest and the key reference (``study_keys``) all derive
    from this declaration.  ``required``: the file must set it (no default)."""
    metadata = {"help": help, "choices": tuple(choices), "positive": positive,
                "empty_means_default": empty_means_default, "required": required}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def declared_keys(cls: type) -> list:
    """The fields of ``cls`` that are study-file keys (declared with ``key``), in file order; fields
    such as a block's or an image's name (its table's name) are not keys."""
    return [f for f in fields(cls) if "help" in f.metadata]


def required_keys(cls: type) -> set[str]:
    return {f.name for f in declared_keys(cls) if f.metadata["required"]}


@dataclass
class StudyInfo:
    """The ``[study]`` table: what researchers call the study (participants see ``protocol.title``)."""

    name: str = key("the study's name (manifest, reports, a bundled study's image folder)", required=True)
    title: str = key("the study's title for researchers (admin page, reports)", "")
    description: str = key("what the study is for, in a sentence (imported studies)", "")


@dataclass
class ImagesSection:
    """The ``[images]`` table: the input images, one ``[images.files.NAME]`` table each."""

    object: str = key("the content image (photo) every stimulus is made from: a NAME of [images.files]",
                      required=True)
    files: dict = key("one table per image, [images.files.NAME], with the keys of [images.files.NAME]",
                      required=True)


@dataclass
class StylesSection:
    """The ``[styles]`` table: the rated styles."""

    rows: list[str] = key("the rated styles (NAMEs of [images.files]), in the figure's order", required=True)


@dataclass
class BaselineMethod:
    """The ``[methods.baseline]`` table: the baseline's "appropriate" λos per style."""

    lambda_os: dict[str, float] | float = key("the baseline's λos per style (NAME = value), or one number for every "
                                              "style; the blocks that do not sweep λos need it", factory=dict,
                                              positive=True)


@dataclass
class NormalizedMethod:
    """The ``[methods.normalized]`` table."""

    lambda_os: float = key("the normalized method's λos in the blocks that do not sweep λos", 1e-3, positive=True)


@dataclass
class Briefing:
    """The ``[briefing]`` table: the example stimuli participants see before the trials (never rated)."""

    styles: list[str] = key("styles of the examples (NAMEs of [images.files], not rated rows); none: no examples",
                            factory=list)
    blocks: list[str] = key("blocks the examples come from (unset: every block that is not a size sweep)",
                            factory=list)
    methods: list[str] = key("methods of the examples", factory=lambda: ["baseline"], choices=METHODS)


@dataclass
class ImageSource:
    """An input image: a file relative to the study folder, or ``skimage:NAME``; optional URL+SHA-256."""

    name: str
    path: str = key("the image file, relative to the study folder, or skimage:NAME", required=True)
    url: str | None = key("where to download it from when the file is missing", None)
    sha256: str | None = key("its SHA-256 (64 lowercase hex digits), checked after a download", None)


@dataclass
class Block:
    """One block of the figure/table: a sweep over columns for each row (style)."""

    name: str
    sweep: str = key("what changes over the columns", required=True, choices=SWEEPS)
    title: str = key("the block's title in figures and reports", "")
    baseline: list[float] = key("lambda_os: the baseline method's lambda_os per column", factory=list, positive=True)
    normalized: list[float] = key("lambda_os: the normalized method's lambda_os per column (as many as baseline)",
                                  factory=list, positive=True)
    boost: float = key("layer_boost: factor of the boosted layer over the others", 100.0, positive=True)
    layers: list[str] = key("layer_boost: the boosted layer per column (unset: [engine] style_layers)", factory=list)
    sizes: list[int] = key(f"size: the object's longer side per column, px (each ≥ {MIN_SIZE})", factory=list, positive=True)
    threshold: float | None = key("the analysis shades cells whose mean is at least this", None)
    rows: list[str] = key("rated styles in this block (unset: every row of [styles])", factory=list)

    @property
    def columns(self) -> int:
        return {"lambda_os": len(self.baseline), "layer_boost": len(self.layers), "size": len(self.sizes)}[self.sweep]


# keys renamed so that one name says one thing (old name -> new); the old name is still read, with a
# deprecation message, and old manifests keep loading
RENAMED_KEYS = {"protocol": {"reference": "reference_method"}}  # vs `references`, the images shown beside


def current_keys(table: str, data: dict) -> dict:
    """``data`` with the renamed keys of ``table`` under their new names (an old manifest's record)."""
    renamed = RENAMED_KEYS.get(table, {})
    return {renamed.get(k, k): v for k, v in data.items()} if isinstance(data, dict) else data


@dataclass
class EngineSettings:
    """The ``[engine]`` table: how every stimulus is optimised (defaults: the paper's)."""

    size: int = key("longer side of the stylised image, px", 512, positive=True)
    iterations: int = key("optimiser iterations per stimulus", 600, positive=True)
    weights: str = key("VGG-19 weights: caffe (bundled) or a file", "caffe")
    content_layers: list[str] = key("VGG-19 layers of the content loss", factory=lambda: ["relu4_2"])
    style_layers: list[str] = key("VGG-19 layers of the style loss", factory=lambda: list(PAPER_STYLE_LAYERS))
    content_weight: float = key("weight of the content loss", 1.0, positive=True)
    style_weight: float = key("weight of the style loss", 0.2, positive=True)
    optimizer: str = key("the optimiser", "lbfgs", choices=("lbfgs", "adam"))
    init: str = key("the image the optimisation starts from", "content", choices=("content", "style", "noise"))
    seed: int = key("random seed (noise init, Adam)", 0)
    pooling: str = key("VGG-19 pooling", "max", choices=("max", "avg"))


@dataclass
class Protocol:
    """What the rating server does (defaults: the paper's protocol).

    ``kind`` chooses the protocol: ``paired`` (the paper's: two conditions of a cell shown one
    after the other, both rated on the scale; with more than two methods, ``reference`` against
    each other method), ``acr`` (absolute category rating, ITU-T P.910: one image, then its
    rating), ``pairwise`` (two methods' images of one item, then "which is better?").
    ``title`` is what participants see (page titles); the study's own title is for researchers.
    """

    title: str = key("page title participants see (neutral: names no method)", PARTICIPANT_TITLE,
                     empty_means_default=True)
    kind: str = key("the protocol: paired (the paper's), acr (one image, then its rating), pairwise (which of two "
                    "is better)", "paired", choices=PROTOCOLS)
    image_seconds: float = key("how long a stimulus is shown, s", 5.0, positive=True)
    rating_seconds: float = key("how long the rating may take, s", 5.0, positive=True)
    scale: list[str] = key("the rating scale's labels, lowest first (at least two)", factory=lambda: list(PAPER_SCALE))
    participants: int = key("participants the study is for", 10, positive=True)
    completion_code: str = key("code shown at the end (e.g. Prolific's)", "")
    redirect_url: str = key("where participants are sent at the end", "")
    attention_checks: int = key("attention-check trials per participant", 0)
    consent_text: str = key("consent text shown before the study", "")
    reference_method: str = key("paired: the method every other one is paired with (default: the first method); "
                                "formerly `reference`", "")
    repeats: int = key("acr: conditions shown a second time, hidden, for intra-rater consistency", 0)
    gold_method: str = key("acr: a method whose images have a known answer (gold items)", "")
    gold_ratings: list[int] = key("acr: the ratings that count as right for the gold items", factory=list)
    layout: str = key("pairwise: the two images side by side or one after the other", "side_by_side",
                      choices=PAIRWISE_LAYOUTS)
    no_preference: bool = key("pairwise: offer \"No preference\" besides \"Image 1\" / \"Image 2\"", False)
    question: str = key("pairwise: what participants answer", PAIRWISE_QUESTION, empty_means_default=True)
    pairs_per_participant: int = key("pairwise: trials per participant, spread evenly over method pairs; 0 = all", 0)
    sampling: str = key("pairwise: balanced (fixed plans) or adaptive (next pair by expected information gain)",
                        "balanced", choices=PAIRWISE_SAMPLING)
    stop_when: list[str] = key("adaptive: \"separated\", \"comparisons:N\" (any one closes the study)", factory=list)
    adaptive_target: str = key("adaptive: what a comparison is chosen for: the methods' scores, every item's, the "
                               "order, or the order and the methods' scores", "methods", choices=ADAPTIVE_TARGETS)
    in_flight_seconds: float = key("adaptive: a pair handed out and unanswered this long no longer counts as pending, s",
                                   60.0, positive=True)
    # --- viewing (evalserver.viewing) ---
    display: str = key("the scale stimuli are shown at: one image pixel per CSS pixel (native), per device pixel "
                       "(device), 70% of the window (fit), or 1:1 where the window holds the study's largest "
                       "images and controls and the one smaller scale that fits where it does not (scale_down)",
                       "native", choices=DISPLAY_MODES)
    answer_with_images: bool = key("the images stay in view while the answer is given (imported acr/pairwise)", False)
    references: list[str] = key("images shown beside the stimuli, never rated: style, content", factory=list)
    min_viewport: list[int] = key("[width, height] CSS px the window must have", factory=list, positive=True)
    allow_mobile: bool = key("false: phones and tablets are screened out", True)
    fullscreen: bool = key("the trials run in full screen; leaving it is flagged", False)
    screen_out_code: str = key("shown to (and sent back with) participants a gate refuses", "")
    screen_out_url: str = key("where refused participants are sent back (e.g. Prolific's \"screened out\" return)", "")
    practice: int = key("practice trials from the briefing stimuli (never analysed)", 0)
    language: str = key("participant pages' language (texts the study file sets are shown as written)", "en",
                        choices=LANGUAGES)
    resume: str = key("who may resume a started participant: only the browser that started (cookie), or also a new "
                      "browser presenting the same external SESSION_ID (cookie_or_session)", "cookie",
                      choices=RESUME_POLICIES)
    attention_screen_out: int = key("screen a participant out after this many failed attention checks (0: never; "
                                    "failures are flagged only)", 0)
    incomplete_code: str = key("shown instead of completion_code to a participant most of whose trials were answered "
                               "too_fast (sooner than the displays take); empty: no code at all", "")
    allow_no_id: bool | None = key("joining without a participant id (PROLIFIC_PID or pid); unset: only when there is "
                                   "no completion_code", None)

    @property
    def image_ms(self) -> int:
        return int(round(self.image_seconds * 1000))

    @property
    def rating_ms(self) -> int:
        return int(round(self.rating_seconds * 1000))


@dataclass
class Study:
    name: str
    title: str
    folder: Path
    object_image: str  # name of an entry of ``images``
    images: dict[str, ImageSource]
    rows: list[str]  # rated styles, in figure order
    briefing_styles: list[str]
    briefing_blocks: list[str]
    briefing_methods: list[str]
    baseline_lambda_os: dict[str, float]  # per style: the "appropriate" baseline value (blocks b, c)
    normalized_lambda_os: float
    blocks: dict[str, Block]
    engine: EngineSettings
    protocol: Protocol
    source_text: str = ""
    image_folder: Path | None = None  # where its images are: the study folder, or the user's for a bundled study

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["folder"] = str(self.folder)
        d.pop("source_text")
        d.pop("image_folder")
        return d

    def image_path(self, name: str) -> Path:
        """The local file of image ``name`` (``skimage:`` samples have none)."""
        return ((self.image_folder or self.folder) / self.images[name].path).resolve()
