"""The text of a ``stylestudy claims`` result (claims.json): for the claims command and the
analysis report, which reads the JSON without torch (the measuring is in ``engine.produce.claims``)."""

from __future__ import annotations


def format_claims(result: dict) -> str:
    """A Markdown table, one line per claim."""
    def num(claim: dict, method: str) -> str:
        value = claim[method]
        if value is None and claim["id"] == "a" and claim["details"].get(method, {}).get("common_strength") is False:
            return "> sweep"
        return "–" if value is None else f"{value:.3g}"

    verdict = {True: "reproduced", False: "not reproduced", None: "not measurable"}
    lines = [f"Style layers: {', '.join(result['style_layers'])}.", "",
             "| claim | measure | baseline | normalized | verdict |", "|---|---|---|---|---|"]
    for c in result["claims"]:
        lines.append(f"| ({c['id']}) {c['claim']} | {c['measure']} | {num(c, 'baseline')} | {num(c, 'normalized')} | "
                     f"{verdict[c['reproduced']]} |")
    a = next(c for c in result["claims"] if c["id"] == "a")
    if a["reproduced"] is not None:
        lines += ["", f"(a) in parts: one λos fits every style: {a['details']['one_lambda_fits_every_style']}; "
                      f"no saturation (last-step RMS baseline {a['details']['baseline']['last_step_rms']:.3g}, "
                      f"normalized {a['details']['normalized']['last_step_rms']:.3g}): {a['details']['no_saturation']}."]
    return "\n".join(lines) + "\n"
