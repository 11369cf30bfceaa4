"""Small QtCharts helpers: a time-series chart for hourly or daily counts (Cloudflare traffic,
Mailgun deliveries), with a second axis for a series of another scale (threats, failures)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from PySide6.QtCharts import (
    QAbstractAxis,
    QBarCategoryAxis,
    QBarSeries,
    QBarSet,
    QChart,
    QChartView,
    QDateTimeAxis,
    QLineSeries,
    QValueAxis,
)
from PySide6.QtCore import QDateTime, QMargins, Qt
from PySide6.QtGui import QColor, QPainter, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

Resolution = Literal["hour", "day"]

SERIES_COLOURS = {
    "blue": "#2c6fbb",
    "green": "#2e9d4f",
    "red": "#d0342c",
    "amber": "#d98e04",
    "grey": "#7f8c8d",
    "purple": "#8e44ad",
}


@dataclass(frozen=True)
class Series:
    """One line (or set of bars): ``points`` are (start of the hour or day, value)."""

    name: str
    points: Sequence[tuple[datetime, float]]
    colour: str = "blue"
    right_axis: bool = False  # on a second scale, for a series much smaller than the others

    @property
    def total(self) -> float:
        return sum(value for _, value in self.points)


def _msecs(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def nice_maximum(value: float) -> float:
    """A round axis maximum a little above ``value`` (1, 2, 5 × 10^n)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return float(step * magnitude)
    return float(10 * magnitude)


class TimeSeriesChart(QChartView):
    """Lines over a date-time axis (``kind="line"``), or bars per hour or day (``kind="bar"``).

    ``set_series`` replaces everything; with no point at all the chart says "No data".
    """

    def __init__(self, title: str = "", *, kind: Literal["line", "bar"] = "line",
                 parent: QWidget | None = None) -> None:
        chart = QChart()
        super().__init__(chart, parent)
        self._chart = chart
        self._title = title
        self.kind = kind
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.setMinimumHeight(220)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        chart.setMargins(QMargins(4, 4, 4, 4))
        chart.legend().setAlignment(Qt.AlignmentFlag.AlignBottom)
        chart.setAnimationOptions(QChart.AnimationOption.NoAnimation)
        self._apply_palette()
        self.series_data: list[Series] = []
        chart.setTitle(title)

    def _apply_palette(self) -> None:
        """Follow the window's light or dark colours rather than QtCharts' own theme."""
        palette = self.palette()
        window = palette.color(QPalette.ColorRole.Window)
        dark = window.lightness() < 128
        self._chart.setTheme(QChart.ChartTheme.ChartThemeDark if dark else QChart.ChartTheme.ChartThemeLight)
        self._chart.setBackgroundBrush(window)
        self._text = palette.color(QPalette.ColorRole.WindowText)
        self._chart.setTitleBrush(self._text)
        self._chart.legend().setLabelColor(self._text)

    def _clear(self) -> None:
        chart = self._chart
        chart.removeAllSeries()
        for axis in list(chart.axes()):
            chart.removeAxis(axis)
            axis.deleteLater()

    def _style_axis(self, axis: QAbstractAxis) -> None:
        axis.setLabelsColor(self._text)
        grid = QColor(self._text)
        grid.setAlpha(40)
        axis.setGridLineColor(grid)

    def set_series(self, series: Sequence[Series], *, resolution: Resolution = "hour", title: str | None = None
                   ) -> None:
        self._clear()
        self.series_data = list(series)
        chart = self._chart
        has_points = any(s.points for s in series)
        chart.setTitle((title if title is not None else self._title) + ("" if has_points else " — no data"))
        if not has_points:
            chart.legend().hide()
            return
        chart.legend().show()
        if self.kind == "bar":
            self._bars(series, resolution)
        else:
            self._lines(series, resolution)

    def _lines(self, series: Sequence[Series], resolution: Resolution) -> None:
        chart = self._chart
        moments = [m for s in series for m, _ in s.points]
        x_axis = QDateTimeAxis()
        x_axis.setFormat("HH:mm" if resolution == "hour" else "ddd d MMM")
        x_axis.setRange(QDateTime.fromMSecsSinceEpoch(_msecs(min(moments))),
                        QDateTime.fromMSecsSinceEpoch(_msecs(max(moments))))
        x_axis.setTickCount(min(9, max(2, len({m for m in moments}))))
        self._style_axis(x_axis)
        chart.addAxis(x_axis, Qt.AlignmentFlag.AlignBottom)
        left = [s for s in series if not s.right_axis]
        right = [s for s in series if s.right_axis]
        for group, alignment in ((left, Qt.AlignmentFlag.AlignLeft), (right, Qt.AlignmentFlag.AlignRight)):
            if not group:
                continue
            y_axis = QValueAxis()
            y_axis.setLabelFormat("%.0f")
            y_axis.setRange(0, nice_maximum(max((v for s in group for _, v in s.points), default=0)))
            y_axis.setTickCount(5)
            self._style_axis(y_axis)
            if alignment == Qt.AlignmentFlag.AlignRight:
                y_axis.setTitleText(" / ".join(s.name for s in group))
                y_axis.setTitleBrush(self._text)
                y_axis.setGridLineVisible(False)
            chart.addAxis(y_axis, alignment)
            for data in group:
                line = QLineSeries()
                line.setName(data.name)
                pen = QPen(QColor(SERIES_COLOURS.get(data.colour, data.colour)))
                pen.setWidth(2)
                line.setPen(pen)
                for moment, value in data.points:
                    line.append(float(_msecs(moment)), float(value))
                chart.addSeries(line)
                line.attachAxis(x_axis)
                line.attachAxis(y_axis)

    def _bars(self, series: Sequence[Series], resolution: Resolution) -> None:
        chart = self._chart
        moments = sorted({m for s in series for m, _ in s.points})
        labels = [m.astimezone().strftime("%H:%M" if resolution == "hour" else "%a %d") for m in moments]
        bars = QBarSeries()
        for data in series:
            values = dict(data.points)
            bar_set = QBarSet(data.name)
            bar_set.setColor(QColor(SERIES_COLOURS.get(data.colour, data.colour)))
            bar_set.setBorderColor(QColor(SERIES_COLOURS.get(data.colour, data.colour)))
            for moment in moments:
                bar_set.append(float(values.get(moment, 0)))
            bars.append(bar_set)
        chart.addSeries(bars)
        x_axis = QBarCategoryAxis()
        x_axis.append(labels)
        self._style_axis(x_axis)
        chart.addAxis(x_axis, Qt.AlignmentFlag.AlignBottom)
        bars.attachAxis(x_axis)
        y_axis = QValueAxis()
        y_axis.setLabelFormat("%.0f")
        y_axis.setRange(0, nice_maximum(max((v for s in series for _, v in s.points), default=0)))
        y_axis.setTickCount(5)
        self._style_axis(y_axis)
        chart.addAxis(y_axis, Qt.AlignmentFlag.AlignLeft)
        bars.attachAxis(y_axis)
