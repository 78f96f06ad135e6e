"""References parse and normalize exactly as distribution/reference does.

The tables are distribution/reference's own (``reference_test.go``, ``normalize_test.go``); the property
tests check round trips, idempotent normalization, and that random text only ever raises InvalidReference.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from ocilens.errors import InvalidReference
from ocilens.reference import Reference, ambiguity_hint, parse_reference, parse_unnormalized, validate_digest

F64 = "f" * 64
SHA = f"sha256:{F64}"
RULES = {"empty", "format", "lowercase", "name-length", "identifier", "digest-format", "digest-length",
         "digest-algorithm"}

# reference_test.go TestReferenceParse (v0.6): input, error rule, full name, domain, tag, digest
PARSE_TABLE = [
    ("test_com", None, "test_com", "", None, None),
    ("test.com:tag", None, "test.com", "", "tag", None),
    ("test.com:5000", None, "test.com", "", "5000", None),
    ("test.com/repo:tag", None, "test.com/repo", "test.com", "tag", None),
    ("test:5000/repo", None, "test:5000/repo", "test:5000", None, None),
    ("test:5000/repo:tag", None, "test:5000/repo", "test:5000", "tag", None),
    (f"test:5000/repo@{SHA}", None, "test:5000/repo", "test:5000", None, SHA),
    (f"test:5000/repo:tag@{SHA}", None, "test:5000/repo", "test:5000", "tag", SHA),
    ("", "empty", None, None, None, None),
    (":justtag", "format", None, None, None, None),
    (f"@{SHA}", "format", None, None, None, None),
    ("repo@sha256:" + "f" * 34, "digest-length", None, None, None, None),
    (f"validname@invaliddigest:{F64}", "digest-algorithm", None, None, None, None),
    ("Uppercase:tag", "lowercase", None, None, None, None),
    ("test:5000/Uppercase/lowercase:tag", "lowercase", None, None, None, None),
    ("lowercase:Uppercase", None, "lowercase", "", "Uppercase", None),
    # distribution/reference v0.6 limits the path (not domain + path) to 255 characters
    ("domain/" + "a" * 256 + ":tag", "name-length", None, None, None, None),
    ("example.com/" + "a" * 255 + ":tag", None, "example.com/" + "a" * 255, "example.com", "tag", None),
    ("a/" * 127 + "a:tag-puts-this-over-max", None, "a/" * 127 + "a", "a", "tag-puts-this-over-max", None),
    ("aa/asdf$$^/aa", "format", None, None, None, None),
    ("sub-dom1.foo.com/bar/baz/quux", None, "sub-dom1.foo.com/bar/baz/quux", "sub-dom1.foo.com", None, None),
    ("sub-dom1.foo.com/bar/baz/quux:some-long-tag", None, "sub-dom1.foo.com/bar/baz/quux", "sub-dom1.foo.com",
     "some-long-tag", None),
    ("b.gcr.io/test.example.com/my-app:test.example.com", None, "b.gcr.io/test.example.com/my-app", "b.gcr.io",
     "test.example.com", None),
    ("xn--n3h.com/myimage:xn--n3h.com", None, "xn--n3h.com/myimage", "xn--n3h.com", "xn--n3h.com", None),
    ("xn--7o8h.com/myimage:xn--7o8h.com@sha512:" + "f" * 128, None, "xn--7o8h.com/myimage", "xn--7o8h.com",
     "xn--7o8h.com", "sha512:" + "f" * 128),
    ("foo_bar.com:8080", None, "foo_bar.com", "", "8080", None),
    ("foo/foo_bar.com:8080", None, "foo/foo_bar.com", "foo", "8080", None),
    ("192.168.1.1", None, "192.168.1.1", "", None, None),
    ("192.168.1.1:tag", None, "192.168.1.1", "", "tag", None),
    ("192.168.1.1:5000", None, "192.168.1.1", "", "5000", None),
    ("192.168.1.1/repo", None, "192.168.1.1/repo", "192.168.1.1", None, None),
    ("192.168.1.1:5000/repo", None, "192.168.1.1:5000/repo", "192.168.1.1:5000", None, None),
    ("192.168.1.1:5000/repo:5050", None, "192.168.1.1:5000/repo", "192.168.1.1:5000", "5050", None),
    ("[2001:db8::1]", "format", None, None, None, None),
    ("[2001:db8::1]:5000", "format", None, None, None, None),
    ("[2001:db8::1]:tag", "format", None, None, None, None),
    ("[2001:db8::1]/repo", None, "[2001:db8::1]/repo", "[2001:db8::1]", None, None),
    ("[2001:db8:1:2:3:4:5:6]/repo:tag", None, "[2001:db8:1:2:3:4:5:6]/repo", "[2001:db8:1:2:3:4:5:6]", "tag", None),
    ("[2001:db8::1]:5000/repo", None, "[2001:db8::1]:5000/repo", "[2001:db8::1]:5000", None, None),
    ("[2001:db8::1]:5000/repo:tag", None, "[2001:db8::1]:5000/repo", "[2001:db8::1]:5000", "tag", None),
    (f"[2001:db8::1]:5000/repo@{SHA}", None, "[2001:db8::1]:5000/repo", "[2001:db8::1]:5000", None, SHA),
    (f"[2001:db8::1]:5000/repo:tag@{SHA}", None, "[2001:db8::1]:5000/repo", "[2001:db8::1]:5000", "tag", SHA),
    ("[2001:db8::]:5000/repo", None, "[2001:db8::]:5000/repo", "[2001:db8::]:5000", None, None),
    ("[::1]:5000/repo", None, "[::1]:5000/repo", "[::1]:5000", None, None),
    ("[fe80::1%eth0]:5000/repo", "format", None, None, None, None),
    ("[fe80::1%@invalidzone]:5000/repo", "format", None, None, None, None),
]


def _unparse(domain: str, path: str, tag: str | None, digest: str | None) -> str:
    return (f"{domain}/{path}" if domain else path) + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


@pytest.mark.parametrize("text,rule,name,domain,tag,digest", PARSE_TABLE,
                         ids=[r[0][:60] or "<empty>" for r in PARSE_TABLE])
def test_parse_table(text: str, rule: str | None, name: str | None, domain: str | None, tag: str | None,
                     digest: str | None) -> None:
    if rule is not None:
        with pytest.raises(InvalidReference) as info:
            parse_unnormalized(text)
        assert info.value.rule == rule
        assert info.value.reference == text
        return
    parsed = parse_unnormalized(text)
    assert (f"{parsed.domain}/{parsed.path}" if parsed.domain else parsed.path) == name
    assert parsed.domain == domain
    assert parsed.tag == tag
    assert parsed.digest == digest
    assert _unparse(*parsed) == text


VALID_NAMES = [
    "docker/docker", "library/debian", "debian", "docker.io/docker/docker", "docker.io/library/debian",
    "docker.io/debian", "index.docker.io/docker/docker", "index.docker.io/library/debian", "index.docker.io/debian",
    "127.0.0.1:5000/docker/docker", "127.0.0.1:5000/library/debian", "127.0.0.1:5000/debian", "192.168.0.1",
    "192.168.0.1:80", "192.168.0.1:8/debian", "192.168.0.2:25000/debian",
    "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev", "[fc00::1]:5000/docker",
    "[fc00::1]:5000/docker/docker", "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
    "docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a", "Docker/docker", "DOCKER/docker",
    # TestValidateRemoteName
    "docker-rules/docker", "docker---rules/docker", "doc/docker", "d/docker", "jess/t", "dock__er/docker",
]
INVALID_NAMES = [
    "https://github.com/docker/docker", "docker/Docker", "-docker", "-docker/docker", "-docker.io/docker/docker",
    "docker///docker", "docker.io/docker/Docker", "docker.io/docker///docker", "[fc00::1]", "[fc00::1]:5000",
    "fc00::1:5000/debian", "[fe80::1%eth0]:5000/debian", "[2001:db8:3:4::192.0.2.33]:5000/debian",
    "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
    # TestValidateRemoteName
    "docker-/docker", "-docker-/docker", "____/____", "_docker/_docker", "dock..er/docker", "dock_.er/docker",
    "dock-.er/docker", "docker/",
    "this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its"
    "_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a"
    "_valid_namespace_because_its_lenth_is_greater_than_255/docker",
]


@pytest.mark.parametrize("name", VALID_NAMES)
def test_valid_names(name: str) -> None:
    ref = parse_reference(name)
    assert ref.registry and ref.repository


@pytest.mark.parametrize("name", INVALID_NAMES)
def test_invalid_names(name: str) -> None:
    with pytest.raises(InvalidReference) as info:
        parse_reference(name)
    assert info.value.rule in RULES


# normalize_test.go TestParseRepositoryInfo: remote name, familiar, full, ambiguous spelling, domain
REPOSITORY_INFO = [
    ("fooo/bar", "fooo/bar", "docker.io/fooo/bar", "index.docker.io/fooo/bar", "docker.io"),
    ("library/ubuntu", "ubuntu", "docker.io/library/ubuntu", "library/ubuntu", "docker.io"),
    ("nonlibrary/ubuntu", "nonlibrary/ubuntu", "docker.io/nonlibrary/ubuntu", "", "docker.io"),
    ("other/library", "other/library", "docker.io/other/library", "", "docker.io"),
    ("private/moonbase", "127.0.0.1:8000/private/moonbase", "127.0.0.1:8000/private/moonbase", "", "127.0.0.1:8000"),
    ("privatebase", "127.0.0.1:8000/privatebase", "127.0.0.1:8000/privatebase", "", "127.0.0.1:8000"),
    ("private/moonbase", "example.com/private/moonbase", "example.com/private/moonbase", "", "example.com"),
    ("privatebase", "example.com/privatebase", "example.com/privatebase", "", "example.com"),
    ("private/moonbase", "example.com:8000/private/moonbase", "example.com:8000/private/moonbase", "",
     "example.com:8000"),
    ("privatebasee", "example.com:8000/privatebasee", "example.com:8000/privatebasee", "", "example.com:8000"),
    ("library/ubuntu-12.04-base", "ubuntu-12.04-base", "docker.io/library/ubuntu-12.04-base",
     "index.docker.io/library/ubuntu-12.04-base", "docker.io"),
    ("library/foo", "foo", "docker.io/library/foo", "docker.io/foo", "docker.io"),
    ("library/foo/bar", "library/foo/bar", "docker.io/library/foo/bar", "", "docker.io"),
    ("store/foo/bar", "store/foo/bar", "docker.io/store/foo/bar", "", "docker.io"),
    ("bar", "Foo/bar", "Foo/bar", "", "Foo"),
    ("bar", "FOO/bar", "FOO/bar", "", "FOO"),
]


@pytest.mark.parametrize("remote,familiar,full,ambiguous,domain", REPOSITORY_INFO)
def test_repository_info(remote: str, familiar: str, full: str, ambiguous: str, domain: str) -> None:
    for text in filter(None, (familiar, full, ambiguous)):
        ref = parse_reference(text)
        assert ref.registry == domain
        assert ref.repository == remote
        assert ref.name == full
        assert ref.familiar == f"{familiar}:latest"
        assert ref.tag == "latest" and ref.digest is None


# normalize_test.go TestParseDockerRef (ours keeps the tag beside the digest; the digest is what is pulled)
DOCKER_REF = [
    ("busybox", "docker.io/library/busybox:latest"),
    ("busybox:latest", "docker.io/library/busybox:latest"),
    ("busybox@sha256:e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582",
     "docker.io/library/busybox@sha256:e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582"),
    ("library/busybox", "docker.io/library/busybox:latest"),
    ("docker.io/busybox", "docker.io/library/busybox:latest"),
    ("docker.io/library/busybox", "docker.io/library/busybox:latest"),
    ("docker.io/busybox:latest", "docker.io/library/busybox:latest"),
    ("library/busybox:latest", "docker.io/library/busybox:latest"),
    ("docker.io/library/busybox:latest", "docker.io/library/busybox:latest"),
    ("gcr.io/library/busybox", "gcr.io/library/busybox:latest"),
    ("gcr.io/library/busybox:latest@sha256:e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582",
     "gcr.io/library/busybox:latest@sha256:e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582"),
    # the issue's own examples
    ("alpine", "docker.io/library/alpine:latest"),
    ("localhost:5000/x", "localhost:5000/x:latest"),
    ("localhost/x", "localhost/x:latest"),
    (f"host/a/b/c:tag@{SHA}", f"docker.io/host/a/b/c:tag@{SHA}"),  # no "." or ":": a Hub namespace
    (f"host.example/a/b/c:tag@{SHA}", f"host.example/a/b/c:tag@{SHA}"),
]


@pytest.mark.parametrize("text,expected", DOCKER_REF)
def test_normalized(text: str, expected: str) -> None:
    ref = parse_reference(text)
    assert str(ref) == expected
    assert parse_reference(expected) == ref


def test_domain_detection() -> None:
    # normalize_test.go TestNormalizedSplitHostname
    for text, domain, path in [
        ("test.com/foo", "test.com", "foo"), ("test_com/foo", "docker.io", "test_com/foo"),
        ("docker/migrator", "docker.io", "docker/migrator"), ("test.com:8080/foo", "test.com:8080", "foo"),
        ("test-com:8080/foo", "test-com:8080", "foo"), ("foo", "docker.io", "library/foo"),
        ("xn--n3h.com/foo", "xn--n3h.com", "foo"), ("xn--n3h.com:18080/foo", "xn--n3h.com:18080", "foo"),
        ("docker.io/foo", "docker.io", "library/foo"), ("docker.io/library/foo", "docker.io", "library/foo"),
        ("docker.io/library/foo/bar", "docker.io", "library/foo/bar"), ("localhost/foo", "localhost", "foo"),
        ("host/a/b/c", "docker.io", "host/a/b/c"),
    ]:
        ref = parse_reference(text)
        assert (ref.registry, ref.repository) == (domain, path), text


def test_tag_and_digest() -> None:
    short = "busybox:latest@sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa"
    ref = parse_reference(short)
    assert str(ref) == "docker.io/library/" + short
    assert ref.familiar == short
    assert ref.tag == "latest"
    assert ref.pinned == ref.digest  # the digest wins over the tag
    assert parse_reference("busybox").pinned == "latest"


@pytest.mark.parametrize("text,rule", [
    ("Uppercase:tag", "lowercase"),
    ("docker.io/Library/x", "lowercase"),
    ("1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a", "identifier"),
    ("", "empty"),
    ("a" * 256, "name-length"),
    ("x@sha256:" + "F" * 64, "digest-format"),
    ("x@sha256:abc", "digest-length"),  # docker's grammar fails it ({32,}); the rule says why
    ("x@sha256:" + "a" * 40, "digest-length"),
    ("x@md5:" + "a" * 32, "digest-algorithm"),
    ("x:" + "t" * 129, "format"),
    ("x:-tag", "format"),
    ("x y", "format"),
    ("x\n", "format"),  # Python's $ would accept a trailing newline; the grammar must not
    ("x:tag\u00e9", "format"),  # Go's \w is ASCII
])
def test_rules(text: str, rule: str) -> None:
    with pytest.raises(InvalidReference) as info:
        parse_reference(text)
    assert info.value.rule == rule
    assert repr(text)[1:-1][:20] in str(info.value) or text == ""


@pytest.mark.parametrize("text,message,hint", [
    (" host/team/app:amd", "leading or trailing whitespace",
     "remove the surrounding whitespace: 'host/team/app:amd'"),
    ("host/team/app:amd ", "leading or trailing whitespace", "remove the surrounding whitespace"),
    ("host/team/app:amd\n", "leading or trailing whitespace", "remove the surrounding whitespace"),
    ("host/team/app:", "the tag after ':' is empty", "drop the ':'"),
    ("alpine:", "the tag after ':' is empty", "drop the ':'"),
    ("host/team/app@", "the digest after '@' is empty", "sha256:<64 hex digits>"),
    ("host/team/app@sha256:", "the digest after '@' is empty", "sha256:<64 hex digits>"),
    ("host/team/app@sha256:abc", "sha256 digest must have 64 hex digits, not 3", "copy the whole digest"),
    ("host/team/app:" + "t" * 129, "the tag is 129 characters; the limit is 128", "at most 128"),
    ("https://host/team/app:amd", "drop the https:// scheme", "write 'host/team/app:amd'"),
    ("http://localhost:5000/app/", "drop the http:// scheme", "write 'localhost:5000/app'"),
    ("HTTPS://Host/App", "drop the https:// scheme", "write 'Host/App'"),
])
def test_specific_messages(text: str, message: str, hint: str) -> None:
    for parse in (parse_reference, parse_unnormalized):
        with pytest.raises(InvalidReference) as info:
            parse(text)
        err = info.value
        assert message in str(err) and err.hint is not None and hint in err.hint, str(err)
        assert err.reference == text and repr(text) in str(err)
        assert "not [registry/]repository" not in str(err)


def test_specific_message_rules() -> None:
    with pytest.raises(InvalidReference) as info:
        parse_reference("x@sha256:abc")
    assert info.value.rule == "digest-length"
    with pytest.raises(InvalidReference) as info:
        parse_reference("x@")
    assert info.value.rule == "digest-format"
    with pytest.raises(InvalidReference) as info:
        parse_reference("x:" + "t" * 129)
    assert info.value.rule == "format"
    assert parse_reference("x:" + "t" * 128).tag == "t" * 128


@pytest.mark.parametrize("text,expected", [
    ("127.0.0.1:5000", "did you mean 127.0.0.1:5000/REPO[:TAG]? '127.0.0.1:5000' has no repository, so docker's "
                       "grammar reads it as the Docker Hub image library/127.0.0.1 with tag 5000"),
    ("localhost:5000", "did you mean localhost:5000/REPO[:TAG]?"),
    ("docker://localhost:5000", "did you mean localhost:5000/REPO[:TAG]?"),
    ("registry.example.com", "did you mean registry.example.com/REPO[:TAG]?"),
    ("UPPER/case", "an uppercase first component is read as a registry host name: 'UPPER' is taken as the registry"),
    ("Team/app:1", "'Team' is taken as the registry and 'app' as the repository; Docker Hub names are lowercase "
                   "(did you mean 'team/app:1'?)"),
    ("alpine", None), ("redis:6", None), ("team/app", None), ("localhost:5000/app", None), ("ghcr.io/o/app", None),
])
def test_ambiguity_hint(text: str, expected: str | None) -> None:
    hint = ambiguity_hint(text)
    assert (hint is None) if expected is None else (hint is not None and expected in hint), hint
    if expected is not None:
        parse_reference(text.removeprefix("docker://"))  # docker's grammar still accepts it


def test_non_string_is_invalid_reference() -> None:
    with pytest.raises(InvalidReference):
        parse_reference(42)  # type: ignore[arg-type]


def test_validate_digest() -> None:
    assert validate_digest(SHA) == SHA
    with pytest.raises(InvalidReference) as info:
        validate_digest("sha256:")
    assert info.value.rule == "digest-format"


def test_reference_is_a_value() -> None:
    ref = Reference.parse("127.0.0.1:5000/team/app:1.4")
    assert ref == Reference("127.0.0.1:5000", "team/app", "1.4", None)
    assert hash(ref) == hash(Reference("127.0.0.1:5000", "team/app", "1.4"))
    assert ref.with_digest(SHA).pinned == SHA
    assert parse_reference(ref) is ref


# --- properties ----------------------------------------------------------------------------------------

_component = st.from_regex(r"[a-z0-9]{1,6}(?:(?:[._]|__|-{1,3})[a-z0-9]{1,6}){0,2}", fullmatch=True)
_path = st.lists(_component, min_size=1, max_size=4).map("/".join)
_domain = st.one_of(
    st.just(""),
    st.just("localhost"),
    st.from_regex(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,6}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,4}[a-zA-Z0-9])?){1,3}",
                  fullmatch=True),
    st.from_regex(r"[a-z0-9]{1,8}:[0-9]{1,5}", fullmatch=True),
    st.from_regex(r"\[[a-f0-9:]{2,12}\](?::[0-9]{1,5})?", fullmatch=True),
)
_tag = st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True))
_digest = st.one_of(st.none(), st.from_regex(r"[a-f0-9]{64}", fullmatch=True).map(lambda h: f"sha256:{h}"))


@st.composite
def references(draw: st.DrawFn) -> str:
    """Strings the grammar accepts, with and without registry, tag and digest."""
    domain, path, tag, digest = draw(_domain), draw(_path), draw(_tag), draw(_digest)
    return _unparse(domain, path, tag, digest)


@given(references())
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_round_trip(text: str) -> None:
    try:
        ref = parse_reference(text)
    except InvalidReference as exc:
        # only the documented ambiguities of the grammar may reject generated names
        assert exc.rule in {"name-length", "identifier", "lowercase", "format"}
        return
    assert parse_reference(str(ref)) == ref
    assert parse_reference(ref.familiar) == ref
    assert str(parse_reference(str(ref))) == str(ref)  # normalization is idempotent
    assert ref.tag is not None or ref.digest is not None


@given(references())
@settings(max_examples=300)
def test_unnormalized_round_trip(text: str) -> None:
    try:
        parsed = parse_unnormalized(text)
    except InvalidReference as exc:
        assert exc.rule in {"name-length", "format"}
        return
    assert _unparse(*parsed) == text


_ALPHABET = "abcxyzAZ09._-/:@[]%$ \u00e9\n"


@given(st.one_of(st.text(max_size=120), st.text(alphabet=_ALPHABET, max_size=80)))
@settings(max_examples=600)
@example("a" * 300)
@example("sha256:" + "a" * 64)
@example("[::1]:5000/x@sha256:" + "A" * 64)
def test_random_text_only_raises_invalid_reference(text: str) -> None:
    try:
        ref = parse_reference(text)
    except InvalidReference as exc:
        assert exc.rule in RULES
        return
    assert isinstance(ref, Reference)
    assert parse_reference(str(ref)) == ref


@given(st.text(alphabet=_ALPHABET, max_size=80))
@settings(max_examples=300)
def test_random_text_unnormalized(text: str) -> None:
    try:
        parse_unnormalized(text)
    except InvalidReference as exc:
        assert exc.rule in RULES


@given(references())
def test_normalization_idempotent(text: str) -> None:
    assume(len(text) < 200)
    try:
        once = str(parse_reference(text))
    except InvalidReference:
        return
    assert str(parse_reference(once)) == once
