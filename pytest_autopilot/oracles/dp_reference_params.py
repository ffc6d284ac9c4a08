"""The parameters of the ``dp_reference`` oracle (``oracles.dp_reference``), as a pydantic model.

Only pydantic and typing here: collection validates a case's params with this model without
importing pandas or numpy. Strict like the other oracles' models ("8" is not 8);
a path that must be a case input is checked against the validation context collection passes
(``{"workspace": [...]}``), when there is one.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from pytest_autopilot.oracles.params import OracleParams, WorkPath, example

Statistic = Literal["mean", "std", "median", "iqr", "min", "max"]
Pair = Annotated[list[float], Field(min_length=2, max_length=2)]


class OutputFile(OracleParams):
    """One file both programs write, compared between them."""

    path: WorkPath = Field(description="path in the work dir, e.g. out/train.csv")
    role: Literal["train", "test"] | None = Field(default=None, description="its part of the split, if any")
    row_slack: int = Field(default=0, ge=0, description="rows its count may differ from the reference's")


class ColumnSpec(OracleParams):
    """How one output column is compared (``np.isclose``-style: |got - want| <= atol + rtol * |want|).
    The default atol accepts a value written rounded to 4 decimals (off by up to 5e-5): a correct
    program may round its output unless the task says otherwise; a case needing more declares it."""

    type: Literal["auto", "float", "int", "str"] = Field(default="auto", description="auto: the reference's")
    atol: float = Field(default=1e-4, ge=0, description="absolute tolerance (the default accepts output rounded to 4 decimals)")
    rtol: float = Field(default=1e-6, ge=0, description="relative tolerance")
    # affine: equal up to one increasing linear map per column (a split may pick other training
    # rows, so fitted statistics differ); its fit is then judged by ``stats``
    match: Literal["exact", "affine"] = Field(
        default="exact", description="affine: equal up to an increasing linear map (a scaled column of a free split)")
    stats: list[Statistic] = Field(default_factory=list, description="statistics compared in the training file")


class RowMatching(OracleParams):
    """How rows are paired: by key columns, after sorting, in file order, or (none set) in any order."""

    key: list[str] = Field(default_factory=list, description="columns identifying a row (unique)")
    sort_by: list[str] = Field(default_factory=list, description="both sides sorted by these, then paired")
    ordered: bool = Field(default=False, description="rows paired in file order")

    @model_validator(mode="after")
    def _one_way(self) -> "RowMatching":
        if sum([bool(self.key), bool(self.sort_by), self.ordered]) > 1:
            raise ValueError("give at most one of key, sort_by, ordered")
        return self


class SplitSpec(OracleParams):
    """Invariants of the files with roles train and test."""

    label: str = Field(description="the class column the split is stratified by")
    disjoint: bool = Field(default=True, description="no row in both files")
    stratified: bool = Field(default=True, description="per class, as many test rows as the reference's")
    class_slack_rows: int = Field(default=1, ge=0, description="per-class test rows may differ this much")
    # False: the candidate may pick other rows for each part (its own random split); rows are
    # then compared over train and test together, statistics in the training file
    same_rows: bool = Field(default=False, description="the candidate must pick the reference's rows for each part")


class SchemaColumn(OracleParams):
    """One column of the generated inputs."""

    name: str = Field(description="the column name")
    type: Literal["id", "int", "float", "category"] = Field(
        description="id: unique increasing integers; int, float: within range; category: one of categories")
    range: Pair | None = Field(default=None, description="valid values, inclusive (int, float)")
    categories: list[str] = Field(default_factory=list, description="class names (category)")
    decimals: int = Field(default=3, ge=0, le=12, description="digits of generated floats")

    @model_validator(mode="after")
    def _complete(self) -> "SchemaColumn":
        if self.type in ("int", "float") and (self.range is None or self.range[0] > self.range[1]):
            raise ValueError(f"column {self.name}: a {self.type} column needs range: [low, high]")
        if self.type == "category" and not self.categories:
            raise ValueError(f"column {self.name}: a category column needs categories")
        return self


class Defects(OracleParams):
    """At most this many of each defect per generated input (each count drawn from 0 to it)."""

    duplicates: int = Field(default=0, ge=0, description="exact duplicate rows")
    missing: int = Field(default=0, ge=0, description="empty cells")
    out_of_range: int = Field(default=0, ge=0, description="numbers outside their column's range")


class GeneratedInputs(OracleParams):
    """Re-runs of both programs on inputs generated from this schema (seeded numpy generation)."""

    path: WorkPath = Field(description="the workspace input file the generated one replaces")
    columns: list[SchemaColumn] = Field(min_length=1, description="the generated table's columns, in order")
    rows_per_class: Annotated[list[int], Field(min_length=2, max_length=2)] = Field(
        default=[4, 30], description="[low, high] rows per class of the first category column")
    new_categories: bool = Field(default=True, description="also draw class names the case never shows")
    defects: Defects = Field(default=Defects(), description="at most this many of each defect per table")
    examples: int = Field(default=5, ge=0, description="how many generated tables both programs run on")
    seed: int = Field(default=0, description="the generator's seed: the same tables every run")

    @field_validator("path")
    @classmethod
    def _an_input(cls, value: str, info: ValidationInfo) -> str:
        workspace = (info.context or {}).get("workspace")
        if workspace is not None and value not in workspace:
            raise ValueError(f"{value!r} is not a workspace path of the case; name one of: "
                             f"{', '.join(sorted(workspace)) or 'none'}")
        return value

    @model_validator(mode="after")
    def _sizes(self) -> "GeneratedInputs":
        low, high = self.rows_per_class
        if not 1 <= low <= high:
            raise ValueError("rows_per_class: [low, high] with 1 <= low <= high")
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError("columns: names must be unique")
        return self


class DpReferenceParams(OracleParams):
    """A DP task of any shape: the case's reference and the candidate run on the same inputs, then
    on generated ones, and their output files are compared."""

    checks = ("exit_code_0", "outputs_exist", "outputs_parse", "columns", "column_types", "finite_values", "row_count",
              "rows_match", "values", "statistics", "split_disjoint", "split_stratified", "deterministic",
              "generated_inputs")

    model_config = example({"reference": "wine_scale/solutions/reference.py",
                            "files": [{"path": "out/train.csv", "role": "train", "row_slack": 3},
                                      {"path": "out/test.csv", "role": "test", "row_slack": 3}],
                            "rows": {"key": ["sample_id"]}, "split": {"label": "cultivar"}})
    reference: str = Field(description="the reference solution, relative to the case file")
    files: list[OutputFile] = Field(min_length=1, description="the files both programs write, compared")
    columns: dict[str, ColumnSpec] = Field(
        default_factory=dict, description="per column; others by type: text and integers exactly, numbers within "
                                          "1e-6, a scaled feature of a free split up to a linear map with its "
                                          "fitted statistics")
    column_order: bool = Field(default=True, description="columns must come in the reference's order")
    rows: RowMatching = Field(default=RowMatching(), description="how rows are paired (key, sort_by, ordered)")
    split: SplitSpec | None = Field(default=None, description="train/test invariants of the files with roles")
    generated: GeneratedInputs | None = Field(default=None, description="re-runs on inputs generated from a schema")
    check_determinism: bool = Field(default=True, description="a second run must write identical files")

    @model_validator(mode="after")
    def _roles(self) -> "DpReferenceParams":
        paths = [f.path for f in self.files]
        if len(set(paths)) != len(paths):
            raise ValueError("files: paths must be unique")
        roles = sorted(f.role for f in self.files if f.role)
        if self.split is not None and roles != ["test", "train"]:
            raise ValueError("split: needs exactly one file with role train and one with role test")
        if self.split is None and roles:
            raise ValueError("files: a role needs split: {label: ...}")
        return self

    def column(self, name: str) -> ColumnSpec:
        return self.columns.get(name) or ColumnSpec()

    def file(self, role: str) -> OutputFile:
        return next(f for f in self.files if f.role == role)
