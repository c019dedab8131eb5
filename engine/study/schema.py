"""The study file's sections as dataclasses, with the paper's defaults (pure Python, no torch)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
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


@dataclass
class ImageSource:
    """An input image: a file relative to the study folder, or ``skimage:NAME``; optional URL+SHA-256."""

    name: str
    path: str
    url: str | None = None
    sha256: str | None = None


@dataclass
class Block:
    """One block of the figure/table: a sweep over columns for each row (style)."""

    name: str
    sweep: str  # lambda_os | layer_boost | size
    title: str = ""
    baseline: list[float] = field(default_factory=list)  # lambda_os sweep values
    normalized: list[float] = field(default_factory=list)
    boost: float = 100.0  # layer_boost: factor of the boosted layer over the others
    layers: list[str] = field(default_factory=list)  # layer_boost: boosted layer per column
    sizes: list[int] = field(default_factory=list)  # size sweep: object longer side per column
    threshold: float | None = None  # analysis shades cells with mean >= threshold
    rows: list[str] = field(default_factory=list)  # rated styles in this block (default: all rated rows)

    @property
    def columns(self) -> int:
        return {"lambda_os": len(self.baseline), "layer_boost": len(self.layers), "size": len(self.sizes)}[self.sweep]


@dataclass
class EngineSettings:
    size: int = 512
    iterations: int = 600
    weights: str = "caffe"
    content_layers: list[str] = field(default_factory=lambda: ["relu4_2"])
    style_layers: list[str] = field(default_factory=lambda: list(PAPER_STYLE_LAYERS))
    content_weight: float = 1.0
    style_weight: float = 0.2
    optimizer: str = "lbfgs"
    init: str = "content"
    seed: int = 0
    pooling: str = "max"


@dataclass
class Protocol:
    """What the rating server does (defaults: the paper's protocol).

    ``kind`` chooses the protocol: ``paired`` (the paper's: two conditions of a cell shown one
    after the other, both rated on the scale; with more than two methods, ``reference`` against
    each other method), ``acr`` (absolute category rating, ITU-T P.910: one image, then its
    rating), ``pairwise`` (two methods' images of one item, then "which is better?").
    ``title`` is what participants see (page titles); the study's own title is for researchers.
    """

    title: str = PARTICIPANT_TITLE
    kind: str = "paired"
    image_seconds: float = 5.0
    rating_seconds: float = 5.0
    scale: list[str] = field(default_factory=lambda: list(PAPER_SCALE))
    participants: int = 10
    completion_code: str = ""
    redirect_url: str = ""
    attention_checks: int = 0
    consent_text: str = ""
    reference: str = ""  # paired: the method every other one is paired with (default: the first method)
    repeats: int = 0  # acr: conditions shown a second time, hidden, for intra-rater consistency
    gold_method: str = ""  # acr: a method whose images have a known answer (gold items) ...
    gold_ratings: list[int] = field(default_factory=list)  # ... the ratings that count as right for them
    layout: str = "side_by_side"  # pairwise: side_by_side | sequential
    no_preference: bool = False  # pairwise: offer "No preference" besides "Image 1" / "Image 2"
    question: str = PAIRWISE_QUESTION  # pairwise: what participants answer
    pairs_per_participant: int = 0  # pairwise: trials per participant, spread evenly over method pairs; 0 = all
    sampling: str = "balanced"  # pairwise: balanced (fixed plans) | adaptive (next pair by expected information gain)
    stop_when: list[str] = field(default_factory=list)  # adaptive: "separated", "comparisons:N" (any one closes the study)
    adaptive_target: str = "methods"  # adaptive: what a comparison is chosen for (evalserver.adaptive):
    # "methods": information about the methods' mean scores | "items": every (item, method) score |
    # "ranking": the expected number of method pairs put in the right order | "ranking+methods": both,
    # each as a share of its best pair's
    in_flight_seconds: float = 60.0  # adaptive: a pair handed out and unanswered this long no longer counts as pending
    # --- viewing (evalserver.viewing) ---
    display: str = "native"  # native | device | fit: the scale at which stimuli are shown (DISPLAY_MODES)
    answer_with_images: bool = False  # the images stay in view while the answer is given (imported acr/pairwise)
    references: list[str] = field(default_factory=list)  # shown beside the stimuli, never rated: style, content
    min_viewport: list[int] = field(default_factory=list)  # [width, height] CSS px the window must have
    allow_mobile: bool = True  # False: phones and tablets are screened out
    fullscreen: bool = False  # the trials run in full screen; leaving it is flagged
    screen_out_code: str = ""  # shown to (and sent back with) participants a gate refuses
    screen_out_url: str = ""  # where they are sent back (e.g. Prolific's "screened out" return)
    practice: int = 0  # practice trials from the briefing stimuli (role practice, never analysed)
    language: str = "en"  # participant pages: en | ko (texts the study file sets are shown as written)
    # who may resume a started participant: "cookie" (only the browser that started) or
    # "cookie_or_session" (also a new browser presenting the same external SESSION_ID)
    resume: str = "cookie"
    # screen a participant out after this many failed attention checks (0: never; failures are flagged only)
    attention_screen_out: int = 0
    # shown instead of completion_code to a participant most of whose trials were answered too_fast
    # (sooner than the displays take): "" = no code at all
    incomplete_code: str = ""
    # joining without a participant id (PROLIFIC_PID or pid): None = only when there is no completion_code
    allow_no_id: bool | None = None

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
