"""The code tables in forms/codes are well-formed data (read directly, not via the loader)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
import yaml

CODES_DIR = Path(__file__).resolve().parents[2] / "forms" / "codes"
CSV_HEADER = ["code", "zh", "en", "parent"]


@dataclass(frozen=True)
class Table:
    """One code table as stored: its sidecar/header data and its rows."""

    file_id: str
    meta: dict
    rows: list[dict]


def _yaml_ids() -> list[str]:
    return sorted(p.stem for p in CODES_DIR.glob("*.yaml") if not p.name.endswith(".meta.yaml"))


def _csv_ids() -> list[str]:
    return sorted(p.stem for p in CODES_DIR.glob("*.csv"))


@cache
def load(file_id: str) -> Table:
    """Read ``<id>.yaml`` or ``<id>.csv`` + ``<id>.meta.yaml``."""
    csv_path = CODES_DIR / f"{file_id}.csv"
    if csv_path.exists():
        meta = yaml.safe_load((CODES_DIR / f"{file_id}.meta.yaml").read_text(encoding="utf-8"))
        with csv_path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            assert reader.fieldnames is not None
            assert reader.fieldnames[:4] == CSV_HEADER
            assert set(reader.fieldnames[4:]) <= {"historical"}
            rows = list(reader)
        return Table(file_id, meta, rows)
    data = yaml.safe_load((CODES_DIR / f"{file_id}.yaml").read_text(encoding="utf-8"))
    meta = {k: v for k, v in data.items() if k != "codes"}
    return Table(file_id, meta, data["codes"])


ALL_IDS = _yaml_ids() + _csv_ids()


def test_expected_tables_present() -> None:
    expected = {
        "gender", "marital_status", "ethnicity", "education", "household_relation",
        "political_status", "religion", "id_type", "country", "region", "population_type",
        "hukou_consistency", "inflow_reason", "permit_type", "residence_type", "visit_purpose",
        "left_behind", "special_group", "house_ownership", "house_category", "building_use",
        "structure", "rental_use", "house_hazard", "unit_kind", "unit_category", "unit_hazard",
        "attention_level", "social_org_type", "unit_status", "address_element_type",
        "occupation", "grid_level",
    }  # fmt: skip
    assert expected <= set(ALL_IDS)
    assert not set(_yaml_ids()) & set(_csv_ids()), "a table is stored both as YAML and CSV"


def test_every_csv_has_a_sidecar() -> None:
    for file_id in _csv_ids():
        assert (CODES_DIR / f"{file_id}.meta.yaml").exists(), file_id


@pytest.mark.parametrize("file_id", ALL_IDS)
def test_table_header(file_id: str) -> None:
    meta = load(file_id).meta
    assert meta["table"] == file_id
    assert isinstance(meta["standard"], str) and meta["standard"].strip()
    assert isinstance(meta["title"]["zh"], str) and meta["title"]["zh"].strip()
    assert isinstance(meta["title"]["en"], str) and meta["title"]["en"].strip()


@pytest.mark.parametrize("file_id", ALL_IDS)
def test_every_code_has_labels_and_is_unique(file_id: str) -> None:
    rows = load(file_id).rows
    assert rows, f"{file_id} has no codes"
    codes = [row["code"] for row in rows]
    for row in rows:
        for key in ("code", "zh", "en"):
            value = row.get(key)
            # A bare YAML 01 / yes / no would load as a number or boolean: codes must be strings.
            assert isinstance(value, str) and value.strip() == value and value, (file_id, row)
    duplicates = {c for c in codes if codes.count(c) > 1}
    assert not duplicates, f"{file_id}: duplicate codes {sorted(duplicates)}"


@pytest.mark.parametrize("file_id", ALL_IDS)
def test_parents_exist_in_the_same_table(file_id: str) -> None:
    rows = load(file_id).rows
    codes = {row["code"] for row in rows}
    for row in rows:
        parent = row.get("parent") or ""
        assert parent == "" or parent in codes, (file_id, row["code"], parent)
        assert parent != row["code"]


def _by_code(file_id: str) -> dict[str, dict]:
    return {row["code"]: row for row in load(file_id).rows}


def test_region_hierarchy_follows_the_code() -> None:
    regions = _by_code("region")
    for code, row in regions.items():
        assert len(code) == 6 and code.isdigit(), code
        parent = row["parent"]
        if code.endswith("0000"):
            assert parent == ""
        else:
            assert parent[:2] == code[:2] and parent.endswith("00"), (code, parent)
        assert row["historical"] in ("", "1")


def test_region_known_codes() -> None:
    regions = _by_code("region")
    assert regions["110105"]["zh"] == "朝阳区"
    assert regions["110105"]["en"] == "Chaoyang Qu"
    assert regions["110105"]["historical"] == ""
    assert regions["440300"]["zh"] == "深圳市"
    assert regions["440300"]["parent"] == "440000"
    assert regions["610100"]["en"] == "Xi'an Shi"
    # Historical codes stay, marked, for old ID numbers: 崇文区 merged into 东城区 in 2010.
    assert regions["110103"]["zh"] == "崇文区"
    assert regions["110103"]["historical"] == "1"


def test_country_known_codes() -> None:
    countries = _by_code("country")
    assert countries["CHN"]["zh"] == "中国"
    assert countries["USA"]["zh"] == "美国"
    assert countries["TWN"]["zh"] == "中国台湾"
    assert countries["HKG"]["zh"] == "中国香港"
    assert countries["MAC"]["zh"] == "中国澳门"
    assert all(len(code) == 3 and code.isupper() for code in countries)


def test_ethnicity_has_the_56_groups() -> None:
    codes = set(_by_code("ethnicity"))
    assert {f"{n:02d}" for n in range(1, 57)} <= codes
    assert {"97", "98"} <= codes
