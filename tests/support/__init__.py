"""Helpers the tests share: servers, fixtures data, fakes. Not tests themselves."""
