"""`{% warehouse_summary_for team as warehouse %}`: lets the Settings page's warehouse section
(templates/events/warehouse_section.html) fetch what it shows without the Settings view knowing about it."""

from django import template

from events.explorer.selectors import warehouse_summary

register = template.Library()


@register.simple_tag
def warehouse_summary_for(team) -> dict:
    return warehouse_summary(team=team)
