"""Units shared by the server and the analysis, defined once.

JOD (just-objectionable difference, as pwcmp): Thurstone Case V with σ = 1 / Φ⁻¹(0.75), so a
difference of 1 JOD means 75% of answers prefer the better method.  The server's adaptive
posterior and the analysis's scales must use the same σ, or their scores would not compare.
"""

from __future__ import annotations

from statistics import NormalDist

JOD_SIGMA = 1.0 / NormalDist().inv_cdf(0.75)  # 1.482602 (pwcmp rounds it to 1.4826)
