"""JUnit XML for the gate: testsuites > testsuite > one testcase per rule, as CI test-report tools read it."""

from __future__ import annotations

import io
import re
import socket
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

from harness.gate.result import FAIL, SKIP, GateResult
from harness.output_file import write_output

# Characters XML 1.0 does not allow (most control characters); model outputs quoted in messages may hold them.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _x(text: object) -> str:
    return _INVALID_XML.sub("\ufffd", str(text))


def junit_tree(result: GateResult) -> ET.ElementTree:
    """The gate result as a JUnit ElementTree (counts on both testsuites and testsuite)."""
    tests, failures, skipped = len(result.checks), result.count(FAIL), result.count(SKIP)
    seconds = f"{sum(c.seconds for c in result.checks):.3f}"
    counts = {"tests": str(tests), "failures": str(failures), "errors": "0", "time": seconds}
    cand, base = result.candidate["variant"], result.baseline["variant"]
    root = ET.Element("testsuites", {"name": "harness gate", **counts})  # the Jenkins schema has no skipped here
    suite = ET.SubElement(root, "testsuite", {
        "name": _x(f"gate {cand.get('name')} vs baseline {base.get('name')}"), **counts, "skipped": str(skipped),
        "timestamp": datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="seconds"),
        "hostname": _x(socket.gethostname()),
    })
    props = ET.SubElement(suite, "properties")
    for name, value in (("candidate.variant_id", cand.get("variant_id")), ("candidate.name", cand.get("name")),
                        ("candidate.run_id", result.candidate["run"].get("run_id")),
                        ("baseline.file", result.baseline_path), ("baseline.variant_id", base.get("variant_id")),
                        ("baseline.run_id", result.baseline["run"].get("run_id"))):
        ET.SubElement(props, "property", {"name": name, "value": _x(value if value is not None else "")})
    for c in result.checks:
        case = ET.SubElement(suite, "testcase", {"name": _x(c.name), "classname": _x(f"harness.gate.{c.rule}"),
                                                 "time": f"{c.seconds:.3f}"})
        detail = (f"baseline: {c.baseline}\ncandidate: {c.candidate}\ndifference: {c.difference}\n"
                  f"allowance: {c.allowance}\n" + (f"minimum detectable effect: {c.mde}\n" if c.mde else "")
                  + c.message + (f"\nwarning: {c.warning}" if c.warning else ""))
        if c.verdict == FAIL:
            failure = ET.SubElement(case, "failure", {"message": _x(c.message), "type": "GateRuleFailed"})
            failure.text = _x(detail)
        elif c.verdict == SKIP:
            ET.SubElement(case, "skipped", {"message": _x(c.message)})
        else:
            ET.SubElement(case, "system-out").text = _x(detail)
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(result: GateResult, path: str | Path) -> Path:
    """Write the JUnit file (UTF-8, with an XML declaration); parent folders are made."""
    buffer = io.BytesIO()
    junit_tree(result).write(buffer, encoding="utf-8", xml_declaration=True)
    return write_output(path, buffer.getvalue())
