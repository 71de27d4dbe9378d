#!/usr/bin/env python3
"""Counts individual test cases from meson's logs and prints 'N passed, M failed'.

meson reports one result per test executable; CI wants test cases. The JUnit
file holds every GoogleTest case; a test executable that crashed or timed out
before writing its cases counts as one failure.
"""
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

logs = Path(sys.argv[1] if len(sys.argv) > 1 else "build/meson-logs")
passed = failed = skipped = 0
suites_with_cases = set()
try:
    root = ET.parse(logs / "testlog.junit.xml").getroot()
    for suite in root.iter("testsuite"):
        for case in suite.iter("testcase"):
            suites_with_cases.add(suite.get("name", "").split(".")[1] if "." in suite.get("name", "") else "")
            if case.find("failure") is not None or case.find("error") is not None:
                failed += 1
            elif case.find("skipped") is not None or case.get("status") == "notrun":
                skipped += 1
            else:
                passed += 1
except (OSError, ET.ParseError):
    pass

try:
    for line in (logs / "testlog.json").read_text().splitlines():
        try:
            t = json.loads(line)
        except ValueError:  # a blank or truncated line: nothing to count
            continue
        if t.get("result") not in ("OK", "SKIP", "EXPECTEDFAIL") and t.get("name") not in suites_with_cases:
            failed += 1
            print(f"test executable '{t.get('name')}' ended with {t.get('result')} before reporting its cases")
except OSError:
    print("no meson test log found")
    failed += 1

line = f"{passed} passed, {failed} failed"
if skipped:
    line += f", {skipped} skipped"
print(line)
sys.exit(1 if failed else 0)
