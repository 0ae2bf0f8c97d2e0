from canvas.checks import csrf_middleware_installed


def test_removing_the_csrf_middleware_is_a_system_check_error(settings):
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if "Csrf" not in m]

    assert [error.id for error in csrf_middleware_installed(None)] == ["canvas.E001"]


def test_the_configured_middleware_passes(settings):
    assert csrf_middleware_installed(None) == []
