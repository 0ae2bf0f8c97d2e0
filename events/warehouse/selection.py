"""Which of one team's events a sync step handles: ranges of ids and single ids.

The catalog sync decides which events are new (its watermark, the gaps it waits for, a failing team's backlog);
every later step of the same pass (the catalog's counts, the typed tables) is handed the same selection, as a
SQL condition, so they all handle exactly the same rows.
"""

from dataclasses import dataclass

from psycopg import sql


@dataclass(frozen=True)
class EventSelection:
    team_id: int
    ranges: tuple[tuple[int, int], ...] = ()  # (first id, last id), both included
    ids: tuple[int, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.ranges or self.ids)

    def covers(self, event_id: int) -> bool:
        return event_id in self.ids or any(first <= event_id <= last for first, last in self.ranges)

    def condition(self, alias: str = "e", *, id_column: str = "id") -> sql.Composable:
        """`<alias>.team_id = … AND (<alias>.id BETWEEN … OR <alias>.id = ANY(…))`: false when empty."""
        table = sql.Identifier(alias)
        column = sql.SQL("{}.{}").format(table, sql.Identifier(id_column))
        parts: list[sql.Composable] = [
            sql.SQL("{} BETWEEN {} AND {}").format(column, sql.Literal(first), sql.Literal(last))
            for first, last in self.ranges
        ]
        if self.ids:
            parts.append(sql.SQL("{} = ANY({}::bigint[])").format(column, sql.Literal(list(self.ids))))
        if not parts:
            return sql.SQL("false")
        return sql.SQL("{}.team_id = {} AND ({})").format(table, sql.Literal(self.team_id), sql.SQL(" OR ").join(parts))
