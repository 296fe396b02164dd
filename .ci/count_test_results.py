#!/usr/bin/env python3
"""Prints 'N passed, N failed, N skipped' over the GoogleTest cases in Bazel's test.xml files."""
import pathlib
import sys
import xml.etree.ElementTree as ElementTree


def count(root: pathlib.Path):
    passed = failed = skipped = 0
    for report in root.rglob("test.xml"):
        try:
            cases = ElementTree.parse(report).getroot().iter("testcase")
        except ElementTree.ParseError:
            failed += 1  # a test binary that died mid-report
            continue
        for case in cases:
            if case.find("failure") is not None or case.find("error") is not None:
                failed += 1
            elif case.get("result") == "skipped" or case.find("skipped") is not None:
                skipped += 1
            else:
                passed += 1
    return passed, failed, skipped


if __name__ == "__main__":
    passed, failed, skipped = count(pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "bazel-testlogs"))
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
