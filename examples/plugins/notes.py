"""notes — a plugin whose state has a shape (used by notebooks/03, which copies and edits it).

Version 1 keeps notes as a list of strings and hands them to its next version with
``save_state``; ``restore_state`` reads what the previous version saved.
"""

from flx_ipy import Plugin, PluginMetadata, PluginState


class Notes(Plugin):
    metadata = PluginMetadata(name="notes", version="1.0.0", description="A tiny note store")

    def start(self):
        self.notes = getattr(self, "notes", [])

    def add(self, text):
        self.notes.append(text)
        return len(self.notes)

    def titles(self):
        return list(self.notes)

    def save_state(self):
        return PluginState("notes", self.metadata.version, runtime_data={"notes": self.notes})

    def restore_state(self, state):
        self.notes = list(state.runtime_data["notes"])
