"""The workshop's calendar months (local time), as the monthly summary counts them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        """``YYYY-MM`` → Month; ValueError on anything else (years 2000–2999)."""
        m = MONTH_RE.match(text.strip())
        if not m:
            raise ValueError("月份格式应为 YYYY-MM")
        year, month = int(m.group(1)), int(m.group(2))
        if not (2000 <= year <= 2999 and 1 <= month <= 12):
            raise ValueError("月份超出范围")
        return cls(year, month)

    @classmethod
    def of(cls, day: date) -> Month:
        return cls(day.year, day.month)

    @classmethod
    def last_complete(cls, today: date) -> Month:
        return cls.of(today).prev()

    @property
    def first(self) -> date:
        return date(self.year, self.month, 1)

    def next(self) -> Month:
        return Month(self.year + 1, 1) if self.month == 12 else Month(self.year, self.month + 1)

    def prev(self) -> Month:
        return Month(self.year - 1, 12) if self.month == 1 else Month(self.year, self.month - 1)

    def minus(self, months: int) -> Month:
        m = self
        for _ in range(months):
            m = m.prev()
        return m

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def label(self) -> str:
        return f"{self.year} 年 {self.month} 月"

    @property
    def short(self) -> str:
        return f"{self.month}月" if self.month != 1 else f"{self.year % 100:02d}年1月"


def last_complete_quarter(month: Month) -> Month:
    """The last month of the latest calendar quarter that has ended with ``month``."""
    m = month
    while m.month % 3:
        m = m.prev()
    return m


def last_complete_year(month: Month) -> int:
    return month.year if month.month == 12 else month.year - 1
