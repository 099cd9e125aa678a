"""How the store is named and tuned, against spec.md#database's words, written apart from `sql.py`.

Two promises a user leans on before any command runs: no message ever shows a URL's password, and
`$PPK_BUSY_TIMEOUT` is a number of seconds from 0 to 86,400, or a one-line refusal that quotes it.
Hypothesis draws database URLs around the ones users write (passwords holding `@`, `:` and `/`,
schemes ppk refuses, ports that are no number) and timeouts around their bounds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ppk.adapters import sql
from ppk.adapters.sql import busy_timeout_s, database_url, shown_url
from ppk.adapters.store import DatabaseError
from ppk.stateful_tests.sql_machines import SPEC_BUSY_TIMEOUT_MAX_S, busy_timeout_by_the_words

MARK = "Zq"
"""Every drawn password starts with it, and nothing else drawn holds it: where it shows, the password
does."""

PASSWORDS = st.builds(
    lambda rest: MARK + rest,
    st.text(alphabet="abcXYZ019@:/%#?!&+=~ ", min_size=0, max_size=12),
)
URLS = st.builds(
    "{}://{}:{}{}/{}".format,
    st.sampled_from(
        [
            *("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2", "postgresql+asyncpg"),
            *("mysql", "sqlite", "sqlite+pysqlite", "oracle"),
        ]
    ),
    st.sampled_from(["ppk", "u_1", ""]),
    PASSWORDS,
    st.sampled_from(["@localhost:5432", "@127.0.0.1", "@db:notaport", "@db:99999", "@[::1]:5432", "@"]),
    st.sampled_from(["ppk", "", "a/b"]),
)
"""`scheme://user:password@host:port/name`, the password always there."""
READ_SCHEMES: Final = {"postgresql", "postgres", "postgresql+psycopg", "sqlite", "sqlite+pysqlite"}
"""spec.md#database: PostgreSQL (driven by psycopg 3) or SQLite; any other scheme is refused."""


@given(url=URLS)
@example(url="postgresql://ppk:Zq@x@localhost:5432/ppk")
@example(url="mysql://ppk:Zq:pw@localhost/ppk")
@example(url="postgresql://ppk:Zq/pw@db:notaport/ppk")
def test_no_message_shows_a_urls_password(url: str) -> None:
    """spec.md#database: a URL read, refused or shown never carries its password into the text."""
    try:
        read = database_url(url)
    except DatabaseError as error:
        assert MARK not in str(error), f"{url!r}: {error}"
        return
    assert MARK not in shown_url(read), f"{url!r}: {shown_url(read)}"
    # What is read is driven as the spec says: PostgreSQL by psycopg 3, or a SQLite file; and only
    # those schemes are read, on either side of them in order (mysql, oracle, asyncpg, psycopg2).
    assert read.drivername in ("postgresql+psycopg", "sqlite"), f"{url!r}: {read.drivername}"
    assert url.partition("://")[0] in READ_SCHEMES, f"{url!r} read as {read.drivername}"


@given(
    scheme=st.sampled_from(["postgresql", "postgres", "mysql"]),
    user=st.sampled_from(["ppk", "u_1", ""]),
    # Not `/`, `?` or `#`, which can end the part SQLAlchemy reads as the host: it may then read the
    # URL (test_no_message_shows_a_urls_password draws those).
    password=st.none() | PASSWORDS.filter(lambda password: not set("/?#") & set(password)),
    name=st.sampled_from(["ppk", "", "a/b"]),
)
def test_a_url_no_parser_reads_is_shown_as_written_but_for_its_password(
    scheme: str, user: str, password: str | None, name: str
) -> None:
    """spec.md#database: a URL SQLAlchemy cannot read (its port is no number) is refused naming it as
    the user wrote it, with `***` for its password and only there: no password, nothing hidden."""
    written = f"{scheme}://{user}{'' if password is None else ':' + password}@db:notaport/{name}"
    shown = f"{scheme}://{user}{'' if password is None else ':***'}@db:notaport/{name}"
    with pytest.raises(DatabaseError) as refused:
        database_url(written)
    assert str(refused.value).startswith(f"{shown!r} is not a database URL"), f"{written!r}: {refused.value}"


SQLITE_PATHS = st.text(alphabet="abcXYZ019._-/ :~é?=&#", min_size=1, max_size=20)
"""File paths, relative and absolute, some sorting before `:memory:` and some after, some holding it,
some holding what a URL reads as options (`?mode=ro`)."""


@given(path=SQLITE_PATHS, as_url=st.booleans())
@example(path=":memory:", as_url=True)
@example(path="./:memory:", as_url=False)
@example(path="ppk.db", as_url=True)
@example(path="ppk.db?mode=ro", as_url=True)
@example(path="ppk.db?mode=ro", as_url=False)
@example(path=":memory:?cache=shared", as_url=True)
def test_a_sqlite_file_is_the_path_written_and_only_memory_is_refused(path: str, as_url: bool) -> None:
    """spec.md#database: a path, or `sqlite:///PATH`, is that SQLite file; SQLite's in-memory name
    is refused (it keeps nothing), as the path `:memory:` (which `./:memory:` is) or in a URL; and a
    URL with anything after `?` (SQLite's options, or what SQLAlchemy would drop) is refused."""
    written = f"sqlite:///{path}" if as_url else path
    meant = path.partition("?")[0] if as_url else str(Path(path))
    if meant in (":memory:", "") if as_url else meant == ":memory:":
        with pytest.raises(DatabaseError, match="an in-memory SQLite database keeps nothing"):
            database_url(written)
        return
    if as_url and "?" in path:
        with pytest.raises(DatabaseError) as refused:
            database_url(written)
        assert str(refused.value).startswith(f"{written!r}: a SQLite URL takes no options after '?'")
        return
    read = database_url(written)
    assert (read.drivername, read.database) == ("sqlite", meant), f"{written!r}: {read!r}"


SECONDS_MAX: Final = int(SPEC_BUSY_TIMEOUT_MAX_S)
"""spec.md#database: `$PPK_BUSY_TIMEOUT` seconds, from 0 to 86,400 (a day)."""


TIMEOUTS = st.one_of(
    st.sampled_from(
        ["", " ", "0", "-0", "-0.0", "86400", "86400.0", "86400.001", "86401", "1e5", "nan", "inf"]
    ),
    st.sampled_from(["-1", "0.001", "5", " 5 ", "60", "1_000", "abc", "5s", "0x10", "-inf"]),
    st.floats(min_value=-10.0, max_value=SECONDS_MAX + 10.0).map(repr),
    st.integers(SECONDS_MAX - 2, SECONDS_MAX + 2).map(str),
    st.text(alphabet="0123456789.-e ", max_size=50),
    st.sampled_from(["1" * 41, "5 seconds, as the runbook of the operator says", " " + "9" * 39 + "0 "]),
)


@given(text=TIMEOUTS)
def test_the_busy_timeout_is_what_its_words_say(text: str) -> None:
    """spec.md#database: the seconds taken, or a refusal naming the variable, quoting the text (its
    first 40 characters) and saying what is allowed."""
    expected = busy_timeout_by_the_words(text)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(sql.BUSY_TIMEOUT_ENV, text)
        try:
            seconds = busy_timeout_s()
        except DatabaseError as error:
            assert expected is None, f"{text!r} refused: {error}"
            stripped = text.strip()
            assert str(error) == (
                f"$PPK_BUSY_TIMEOUT is {stripped[:40]!r}: it must be a number of seconds from 0 to 86400"
            )
            return
    assert seconds == expected, f"{text!r}: {seconds}, not {expected}"
