"""A search's pilot: with no past fits of its estimator, a few fits timed on the cluster after it is created
(services.estimates.search_pilot_run); the estimate they give is shown on the search's page."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("search", "0007_names")]

    operations = [
        migrations.AddField(
            model_name="search",
            name="pilot",
            field=models.JSONField(
                blank=True,
                help_text="with no past fits to estimate from: the pilot's estimate (services.estimates)",
                null=True,
            ),
        ),
    ]
