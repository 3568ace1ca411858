from __future__ import annotations

from django.apps import AppConfig


class SearchConfig(AppConfig):
    name = "search"
    verbose_name = "Fanout searches"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate
        from django_q.signals import post_spawn

        from search.schedules import remove_old_schedules
        from search.services.runners import keep_warm_runner

        post_migrate.connect(remove_old_schedules, sender=self)
        post_spawn.connect(keep_warm_runner, dispatch_uid="fanout-warm-runner")
