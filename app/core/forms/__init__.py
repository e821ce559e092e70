"""Forms as data: the form files and code tables of ``forms/`` loaded into a typed FormSet.

The package's face is ``formset`` (load and check a form set, the model types); ``model``
holds the types, ``loader`` the line-aware YAML, ``field``/``check``/``conditions`` the parsing
and checks of one form, ``codes`` the code tables.
"""

from app.core.forms.formset import (
    FIELD_TYPES,
    Code,
    CodeTable,
    Field,
    Form,
    FormFileError,
    FormSet,
    Problem,
    Roles,
    Section,
    Text,
    UnknownFormError,
    check_formset,
    default_forms_dir,
    load_formset,
)

__all__ = [
    "Text",
    "Field",
    "Section",
    "Code",
    "CodeTable",
    "Roles",
    "Form",
    "FormSet",
    "Problem",
    "FormFileError",
    "UnknownFormError",
    "FIELD_TYPES",
    "default_forms_dir",
    "check_formset",
    "load_formset",
]
