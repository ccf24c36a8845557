"""The classes the model tells apart. A class id is the class's position in ``CLASS_NAMES``:
the staged folders, the ``.lst`` files, the model's probability vector and every report use it."""
from __future__ import annotations

CLASS_NAMES: tuple[str, ...] = ("bicycle", "motorcycle")


def class_name(class_id: int) -> str:
    """The name of a class id; an id the project does not know is shown as its number."""
    return CLASS_NAMES[class_id] if 0 <= class_id < len(CLASS_NAMES) else str(class_id)
