from django.apps import AppConfig


class CanvasConfig(AppConfig):
    name = "canvas"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
