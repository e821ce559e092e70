"""One input widget per field type (``widgets.make_field_widget``), built from a form's Field.

``base`` holds what every field widget shares (value, focus, validation marks, the wheel
guard); ``lines``, ``choices``, ``geo_ref`` the widget families; ``code_index`` the code-table
search behind the pickers.
"""

from app.ui.fields.widgets import (
    CODE_ROLE,
    SEARCH_ROLE,
    SHORT_TABLE_MAX,
    BooleanField,
    ChoiceField,
    CodeIndex,
    CodePickerField,
    CoordinatesField,
    CreditCodeField,
    DateField,
    FieldWidget,
    IdNumberField,
    LineField,
    MultiChoiceField,
    NumberField,
    PhotoField,
    ReferenceField,
    code_display,
    code_index,
    make_field_widget,
)

__all__ = [
    "SHORT_TABLE_MAX",
    "CODE_ROLE",
    "SEARCH_ROLE",
    "CodeIndex",
    "code_index",
    "code_display",
    "FieldWidget",
    "LineField",
    "NumberField",
    "DateField",
    "IdNumberField",
    "CreditCodeField",
    "ChoiceField",
    "CodePickerField",
    "MultiChoiceField",
    "BooleanField",
    "CoordinatesField",
    "ReferenceField",
    "PhotoField",
    "make_field_widget",
]
