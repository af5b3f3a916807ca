"""Kite Connect on the wire, for the loopback fakes: the official mock payloads
(zerodha/kiteconnect-mocks, copied verbatim so the tests need nothing outside the repository),
the ticker's packet packer (protocols.md 5.5, verified against pykiteconnect), a loopback Kite
ticker and a loopback Kite REST server.

    ticker = KiteTickerFake(api_key="kite-key", access_token="kite-token").start()
    rest = KiteRestFake(api_key="kite-key", access_token="kite-token").start()
    # [providers.kite] ticker_url = ticker.url, root = rest.url
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import json
import re
import struct
import threading
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import websockets

from .loopback import HttpFake, Request, Response, WsFake

# --------------------------------------------------------------------------------------------
# Official mocks (zerodha/kiteconnect-mocks)
# --------------------------------------------------------------------------------------------

MOCK_INSTRUMENTS_CSV = """\
instrument_token,exchange_token,tradingsymbol,name,last_price,expiry,strike,tick_size,lot_size,instrument_type,segment,exchange
3813889,14898,CENTRALBK-BE,CENTRAL BANK OF INDIA,0.0,,0.0,0.05,1,EQ,NSE,NSE
4645121,18145,EMMBI-BL,EMMBI INDUSTRIES,0.0,,0.0,0.05,1,EQ,NSE,NSE
4531969,17703,MIDCAPIWIN-BL,ICICI PRU MIDCAP IWIN ETF,0.0,,0.0,0.01,1,EQ,NSE,NSE
5533953,21617,ABCAPITAL-BL,ADITYA BIRLA CAPITAL,0.0,,0.0,0.05,1,EQ,NSE,NSE
3861249,15083,ADANIPORTS,ADANI PORT & SEZ,0.0,,0.0,0.05,1,EQ,NSE,NSE
4419329,17263,ARMANFIN,ARMAN FIN SERV,0.0,,0.0,0.05,1,EQ,NSE,NSE
12073986,47164,BANKNIFTY18JAN23500CE,,2528.4,2018-01-25,23500.0,0.05,40,CE,NFO-OPT,NFO
13693186,53489,ADANIPORTS17DEC490PE,,80.65,2017-12-28,490.0,0.05,2500,PE,NFO-OPT,NFO
136483588,533139,FFTF16BGR,FORTIS FIXED TERM FUND - SERIE,0.0,,0.0,0.01,1,EQ,BSE,BSE
3713281,14505,BALAMINES-BE,BALAJI AMINES,0.0,,0.0,0.05,1,EQ,NSE,NSE
1373441,5365,BATAINDIA-BE,BATA INDIA DEP RS,0.0,,0.0,0.05,1,EQ,NSE,NSE
5421569,21178,CDSL-BE,CENTRAL DEPO SER (I),0.0,,0.0,0.05,1,EQ,NSE,NSE
5421313,21177,CDSL-BL,CENTRAL DEPO SER (I),0.0,,0.0,0.05,1,EQ,NSE,NSE
1374209,5368,CHENNPETRO-BE,CHENNAI PETRO CORP DE,0.0,,0.0,0.05,1,EQ,NSE,NSE
3419393,13357,GANGOTRI,GANGOTRI TEXTILES,0.0,,0.0,0.05,1,EQ,NSE,NSE
2703361,10560,NAVKARCORP-BL,NAVKAR CORPORATION,0.0,,0.0,0.05,1,EQ,NSE,NSE
5001473,19537,PDPL,PARENTERAL DRUGS,0.0,,0.0,0.05,1,EQ,NSE,NSE
12074242,47165,BANKNIFTY18JAN23500PE,,35.15,2018-01-25,23500.0,0.05,40,PE,NFO-OPT,NFO
12074498,47166,BANKNIFTY18JAN23600CE,,2435.55,2018-01-25,23600.0,0.05,40,CE,NFO-OPT,NFO
5420545,21174,CDSL,CENTRAL DEPO SER (I),0.0,,0.0,0.05,1,EQ,NSE,NSE
3370497,13166,CELEBRITY-BL,CELEBRITY FASHIONS,0.0,,0.0,0.05,1,EQ,NSE,NSE
12074754,47167,BANKNIFTY18JAN23600PE,,41.25,2018-01-25,23600.0,0.05,40,PE,NFO-OPT,NFO
3146497,12291,CENTEXT-BL,CENTURY EXTRUSIONS,0.0,,0.0,0.05,1,EQ,NSE,NSE
4550145,17774,GROBTEA-BE,THE GROB TEA COMPANY,0.0,,0.0,0.05,1,EQ,NSE,NSE
21227266,82919,INDIACEM17DEC220PE,,43.45,2017-12-28,220.0,0.05,3500,PE,NFO-OPT,NFO
6938881,27105,CHROMATIC-BE,CHROMATIC INDIA,0.0,,0.0,0.05,1,EQ,NSE,NSE
4578305,17884,DBCORP-BL,D.B.CORP,0.0,,0.0,0.05,1,EQ,NSE,NSE
3155457,12326,DCW-BL,DCW,0.0,,0.0,0.05,1,EQ,NSE,NSE
5101569,19928,HUDCO-N8,7.64% TAX FREETRI SR2B,0.0,,0.0,0.01,1,EQ,NSE,NSE
1707521,6670,INFARINDIA,INFAR (INDIA),0.0,,0.0,0.05,1,EQ,NSE,NSE
21227522,82920,INDIACEM17DEC225CE,,0.4,2017-12-28,225.0,0.05,3500,CE,NFO-OPT,NFO
21228290,82923,INDIACEM17DEC230PE,,53.1,2017-12-28,230.0,0.05,3500,PE,NFO-OPT,NFO
136484868,533144,COX&KINGS,COX & KINGS,0.0,,0.0,0.05,1,EQ,BSE,BSE
12072962,47160,BANKNIFTY18JAN23400CE,,2622.0,2018-01-25,23400.0,0.05,40,CE,NFO-OPT,NFO
12073474,47162,BANKNIFTY18JAN23400PE,,29.85,2018-01-25,23400.0,0.05,40,PE,NFO-OPT,NFO
12075010,47168,BANKNIFTY18JAN23700CE,,2343.55,2018-01-25,23700.0,0.05,40,CE,NFO-OPT,NFO
21227778,82921,INDIACEM17DEC225PE,,48.25,2017-12-28,225.0,0.05,3500,PE,NFO-OPT,NFO
21228034,82922,INDIACEM17DEC230CE,,0.25,2017-12-28,230.0,0.05,3500,CE,NFO-OPT,NFO
112655620,440061,828GOI27-ML,828GOI2027,0.0,,0.0,0.25,500000,EQ,BSE,BSE
136441604,532975,AISHWARYA,AISHWARYA TELECOM,0.0,,0.0,0.01,1,EQ,BSE,BSE
136483076,533137,DEN,DEN NETWORKS,0.0,,0.0,0.05,1,EQ,BSE,BSE
136483332,533138,ASTEC,ASTEC LIFESCIENCES,0.0,,0.0,0.05,1,EQ,BSE,BSE
136485380,533146,DLINKINDIA,D-LINK (INDIA),0.0,,0.0,0.05,1,EQ,BSE,BSE
1219329,4763,BANKBARODA-BE,BOB - DEPO SETT,0.0,,0.0,0.05,1,EQ,NSE,NSE
2928385,11439,BANKBEES,RELIANCE ETF BANK BEES,0.0,,0.0,0.01,1,EQ,NSE,NSE
3715841,14515,BANSWRAS-BE,BANSWARA SYNTEX,0.0,,0.0,0.05,1,EQ,NSE,NSE
3137281,12255,BERGEPAINT-BL,BERGER PAINTS (I),0.0,,0.0,0.05,1,EQ,NSE,NSE
3901185,15239,BIRLAMONEY,ADITYA BIRLA MONEY,0.0,,0.0,0.05,1,EQ,NSE,NSE
1789185,6989,CARRIERAIR-BE,CARRIER AIRCON DEPO,0.0,,0.0,0.05,1,EQ,NSE,NSE
3123713,12202,CASTEXTECH-BL,CASTEX TECHNOLOGIES,0.0,,0.0,0.05,1,EQ,NSE,NSE
136485892,533148,JSWENERGY,JSW ENERGY,0.0,,0.0,0.05,1,EQ,BSE,BSE
136486916,533152,MBLINFRA,MBL INFRASTRUCTURES,0.0,,0.0,0.05,1,EQ,BSE,BSE
136487172,533153,FDCLTDBBPH,FDC*,0.0,,0.0,0.05,1,EQ,BSE,BSE
138027524,539170,AXISHB23DD,AXIS MUTUAL FUND,0.0,,0.0,0.01,1,EQ,BSE,BSE
244332292,954423,RCL14JUL16B,RCL-NIFTY-14-1-19-PVT,0.0,,0.0,0.01,10,EQ,BSE,BSE
244352260,954501,8HDFCL18,HDFCL-8%-15-1-18-PVT,0.0,,0.0,0.01,1,EQ,BSE,BSE
244834820,956386,945SREI24,SREI-9.45%-26-5-24-PVT,0.0,,0.0,0.01,1,EQ,BSE,BSE
5534209,21618,ABCAPITAL-BE,ADITYA BIRLA CAPITAL,0.0,,0.0,0.05,1,EQ,NSE,NSE
3412225,13329,ERAINFRA-BL,ERA INFRA ENGINEERING,0.0,,0.0,0.05,1,EQ,NSE,NSE
1884161,7360,SETFNN50-BL,SBI-ETF NIFTY NEXT 50,0.0,,0.0,0.01,1,EQ,NSE,NSE
3028225,11829,SSWL,STEEL STRIPS WHEELS,0.0,,0.0,0.05,1,EQ,NSE,NSE
12075266,47169,BANKNIFTY18JAN23700PE,,48.15,2018-01-25,23700.0,0.05,40,PE,NFO-OPT,NFO
12525058,48926,BANKNIFTY17DEC22500PE,,8.0,2017-12-28,22500.0,0.05,40,PE,NFO-OPT,NFO
13842434,54072,BANKNIFTY17NOV23600PE,,3.0,2017-11-30,23600.0,0.05,40,PE,NFO-OPT,NFO
6128129,23938,ESSARPORTS-BE,ESSAR PORTS,0.0,,0.0,0.05,1,EQ,NSE,NSE
21231874,82937,INDIANB17DEC160PE,,0.05,2017-12-28,160.0,0.05,2000,PE,NFO-OPT,NFO
136492036,533172,IVZINGOLD,INVESCO INDIA GOLD EXCHANGE TR,0.0,,0.0,0.01,1,EQ,BSE,BSE
21232386,82939,INDIANB17DEC170PE,,0.05,2017-12-28,170.0,0.05,2000,PE,NFO-OPT,NFO
13845506,54084,BANKNIFTY17NOV23900PE,,2.25,2017-11-30,23900.0,0.05,40,PE,NFO-OPT,NFO
136504580,533221,AHLWEST,ASIAN HOTELS (WEST),0.0,,0.0,0.05,1,EQ,BSE,BSE
4671233,18247,DEEPIND-BL,DEEP INDUSTRIES,0.0,,0.0,0.05,1,EQ,NSE,NSE
6562305,25634,ESSARSHPNG,ESSAR SHIPPING,0.0,,0.0,0.05,1,EQ,NSE,NSE
136518404,533275,GAL,GYSCOAL ALLOYS,0.0,,0.0,0.01,1,EQ,BSE,BSE
3604481,14080,GODREJIND-BE,GODREJ INDUSTRIES,0.0,,0.0,0.05,1,EQ,NSE,NSE
4527361,17685,GPTINFRA,GPT INFRAPROJECTS,0.0,,0.0,0.05,1,EQ,NSE,NSE
13845762,54085,BANKNIFTY17NOV24000CE,,1776.2,2017-11-30,24000.0,0.05,40,CE,NFO-OPT,NFO
211713,827,DEEPAKFERT,DEEPAK FERTILIZERS & PETR,0.0,,0.0,0.05,1,EQ,NSE,NSE
1256193,4907,ENGINERSIN,ENGINEERS INDIA,0.0,,0.0,0.05,1,EQ,NSE,NSE
3449089,13473,GTNTEX,GTN TEXTILES,0.0,,0.0,0.05,1,EQ,NSE,NSE
5003009,19543,HDFCMFGETF,HDFC GOLD ETF,0.0,,0.0,0.05,1,EQ,NSE,NSE
2166273,8462,DUNCANSIND-BE,DUNCANS INDUSTRIES,0.0,,0.0,0.05,1,EQ,NSE,NSE
21230850,82933,INDIANB17DEC140PE,,0.05,2017-12-28,140.0,0.05,2000,PE,NFO-OPT,NFO
21231106,82934,INDIANB17DEC150CE,,262.45,2017-12-28,150.0,0.05,2000,CE,NFO-OPT,NFO
21231362,82935,INDIANB17DEC150PE,,0.05,2017-12-28,150.0,0.05,2000,PE,NFO-OPT,NFO
136518660,533276,BSLIMITED,BS,0.0,,0.0,0.01,1,EQ,BSE,BSE
3798529,14838,DECCANCE,DECCAN CEMENTS,0.0,,0.0,0.05,1,EQ,NSE,NSE
212481,830,DEEPAKNITR,DEEPAK NITRITE,0.0,,0.0,0.05,1,EQ,NSE,NSE
3542273,13837,DONEAR-BL,DONEAR IND.,0.0,,0.0,0.05,1,EQ,NSE,NSE
3862529,15088,EDL,EMPEE DISTI.,0.0,,0.0,0.05,1,EQ,NSE,NSE
2389505,9334,RAVALSUGAR-BE,RAVALGAONSUGAR FARM,0.0,,0.0,0.05,1,EQ,NSE,NSE
21231618,82936,INDIANB17DEC160CE,,252.5,2017-12-28,160.0,0.05,2000,CE,NFO-OPT,NFO
21232130,82938,INDIANB17DEC170CE,,242.55,2017-12-28,170.0,0.05,2000,CE,NFO-OPT,NFO
112653060,440051,830GOI42-ML,830GOI2042,0.0,,0.0,0.25,500000,EQ,BSE,BSE
7697153,30067,DUNCANSLTD-BE,DUNCANS INDUSTRIES,0.0,,0.0,0.05,1,EQ,NSE,NSE
4818433,18822,ENDURANCE,ENDURANCE TECHNO.,0.0,,0.0,0.05,1,EQ,NSE,NSE
2683649,10483,ENTEGRA,ENTEGRA,0.0,,0.0,0.05,1,EQ,NSE,NSE
3411713,13327,ERAINFRA,ERA INFRA ENGINEERING,0.0,,0.0,0.05,1,EQ,NSE,NSE
6563329,25638,ESSARSHPNG-BE,ESSAR SHIPPING,0.0,,0.0,0.05,1,EQ,NSE,NSE
4352001,17000,GISOLUTION-BE,GI ENGINEERING SOLNS,0.0,,0.0,0.05,1,EQ,NSE,NSE
"""

TICKER_QUOTE_PACKET_B64 = "AAY6AQACZoMAAAABAAJlaQAR8bIAA+n/AAWANwACZPMAAmc8AAJhyQACZGw="
TICKER_FULL_PACKET_B64 = (
    "AAY6AQACZroAAAAHAAJlbQASMhcAA+m7AAWKAQACZPMAAmc8AAJhyQACZGxg4pR/AAAAAAAAAAAAAAAAYOKUfwAAAAUAAmac"
    "AAEAAAAAAIwAAmZ0AAIAAAAAAAIAAmZvAAEAAAAAANsAAmZqAAcAAAAAADIAAmZlAAEAAAAAAKwAAma6AAMAAAAAACwAAma/"
    "AAMAAAAAAS4AAmbJAAMAAAAAAI0AAmbOAAIAAAAAAtQAAmbTAAUAAA=="
)
TICKER_LTP: dict[str, Any] = {
    "mode": "ltp",
    "tradable": True,
    "instrument_token": 408065,
    "last_price": 1573.15,
}
TICKER_QUOTE: dict[str, Any] = {
    "mode": "quote",
    "tradable": True,
    "instrument_token": 408065,
    "last_price": 1573.15,
    "last_quantity": 1,
    "average_price": 1570.33,
    "volume": 1175986,
    "buy_quantity": 256511,
    "sell_quantity": 360503,
    "ohlc": {"open": 1569.15, "high": 1575, "low": 1561.05, "close": 1567.8},
    "change": 5.900000000000091,
}
TICKER_FULL: dict[str, Any] = {
    "mode": "full",
    "tradable": True,
    "instrument_token": 408065,
    "last_price": 1573.7,
    "last_quantity": 7,
    "average_price": 1570.37,
    "volume": 1192471,
    "buy_quantity": 256443,
    "sell_quantity": 363009,
    "ohlc": {"open": 1569.15, "high": 1575, "low": 1561.05, "close": 1567.8},
    "last_trade_time": "2021-07-05T10:41:27+05:30",
    "oi": 0,
    "oi_day_high": 0,
    "oi_day_low": 0,
    "timestamp": "2021-07-05T10:41:27+05:30",
    "change": 5.900000000000091,
    "depth": {
        "buy": [
            {"price": 1573.4, "quantity": 5, "orders": 1},
            {"price": 1573, "quantity": 140, "orders": 2},
            {"price": 1572.95, "quantity": 2, "orders": 1},
            {"price": 1572.9, "quantity": 219, "orders": 7},
            {"price": 1572.85, "quantity": 50, "orders": 1},
        ],
        "sell": [
            {"price": 1573.7, "quantity": 172, "orders": 3},
            {"price": 1573.75, "quantity": 44, "orders": 3},
            {"price": 1573.85, "quantity": 302, "orders": 3},
            {"price": 1573.9, "quantity": 141, "orders": 2},
            {"price": 1573.95, "quantity": 724, "orders": 5},
        ],
    },
}
HISTORICAL_MINUTE: dict[str, Any] = {
    "status": "success",
    "data": {
        "candles": [
            ["2017-12-15T09:15:00+0530", 1704.5, 1705, 1699.25, 1702.8, 2499],
            ["2017-12-15T09:16:00+0530", 1702, 1702, 1698.15, 1698.15, 1271],
            ["2017-12-15T09:17:00+0530", 1698.15, 1700.25, 1698, 1699.25, 831],
            ["2017-12-15T09:18:00+0530", 1700, 1700, 1698.3, 1699, 771],
            ["2017-12-15T09:19:00+0530", 1699, 1700, 1698.1, 1699.8, 543],
            ["2017-12-15T09:20:00+0530", 1699.8, 1700, 1696.55, 1696.9, 802],
        ]
    },
}

POSTBACK: dict[str, Any] = {
    "user_id": "AB1234",
    "unfilled_quantity": 0,
    "app_id": 1234,
    "checksum": "2011845d9348bd6795151bf4258102a03431e3bb12a79c0df73fcb4b7fde4b5d",
    "placed_by": "AB1234",
    "order_id": "220303000308932",
    "exchange_order_id": "1000000001482421",
    "parent_order_id": None,
    "status": "COMPLETE",
    "status_message": None,
    "status_message_raw": None,
    "order_timestamp": "2022-03-03 09:24:25",
    "exchange_update_timestamp": "2022-03-03 09:24:25",
    "exchange_timestamp": "2022-03-03 09:24:25",
    "variety": "regular",
    "exchange": "NSE",
    "tradingsymbol": "SBIN",
    "instrument_token": 779521,
    "order_type": "MARKET",
    "transaction_type": "BUY",
    "validity": "DAY",
    "product": "CNC",
    "quantity": 1,
    "disclosed_quantity": 0,
    "price": 0,
    "trigger_price": 0,
    "average_price": 470,
    "filled_quantity": 1,
    "pending_quantity": 0,
    "cancelled_quantity": 0,
    "market_protection": 0,
    "meta": {},
    "tag": None,
    "guid": "XXXXXX",
}

TICKER_QUOTE_PACKET = base64.b64decode(TICKER_QUOTE_PACKET_B64)  # 44 bytes, no count/length header
TICKER_FULL_PACKET = base64.b64decode(TICKER_FULL_PACKET_B64)  # 184 bytes

# The rows the tests stream, added to the mock master: INFY (the brief's row), two indices, a
# CDS currency future (prices in 1e-7 rupees) and a BCD one (1e-4). The segment is token & 0xff.
INFY = 408065
NIFTY = 256265  # & 0xff == 9: indices
SENSEX = 265  # BSE index, & 0xff == 9
USDINR = 1893379  # & 0xff == 3: CDS
EURINR_BCD = 1893382  # & 0xff == 6: BCD
EXTRA_ROWS = (
    "408065,1594,INFY,INFOSYS,0.0,,0.0,0.05,1,EQ,NSE,NSE\n"
    "256265,1001,NIFTY 50,NIFTY 50,0.0,,0.0,0.0,0,EQ,INDICES,NSE\n"
    "265,1,SENSEX,SENSEX,0.0,,0.0,0.0,0,EQ,INDICES,BSE\n"
    "1893379,7396,USDINR24DECFUT,USDINR,0.0,2024-12-27,0.0,0.0025,1,FUT,CDS-FUT,CDS\n"
    "1893382,7396,EURINR24DECFUT,EURINR,0.0,2024-12-27,0.0,0.0025,1,FUT,BCD-FUT,BCD\n"
)
INSTRUMENTS_CSV = MOCK_INSTRUMENTS_CSV + EXTRA_ROWS

HISTORICAL_DAY: dict[str, Any] = {
    "status": "success",
    "data": {
        "candles": [
            ["2017-12-13T00:00:00+0530", 1010.0, 1019.9, 1001.05, 1011.5, 4533187],
            ["2017-12-14T00:00:00+0530", 1011.5, 1031.0, 1010.25, 1028.4, 5102931],
            ["2017-12-15T00:00:00+0530", 1028.0, 1036.7, 1021.0, 1033.35, 4120044],
        ]
    },
}

TOKEN_EXCEPTION = {
    "status": "error",
    "message": "Incorrect `api_key` or `access_token`.",
    "data": None,
    "error_type": "TokenException",
}
TOO_MANY_REQUESTS = {
    "status": "error",
    "message": "Too many requests",
    "data": None,
    "error_type": "NetworkException",
}

# --------------------------------------------------------------------------------------------
# The packer (protocols.md 5.5)
# --------------------------------------------------------------------------------------------

HEARTBEAT = b"\x00"


def ltp(tok: int, price: int) -> bytes:
    return struct.pack(">II", tok, price)


def quote(
    tok: int, ltp: int, ltq: int, atp: int, vol: int, tbq: int, tsq: int, o: int, h: int, lo: int, c: int
) -> bytes:
    return struct.pack(">11I", tok, ltp, ltq, atp, vol, tbq, tsq, o, h, lo, c)


def full(
    tok: int,
    *q: int,
    ltt: int,
    oi: int,
    oih: int,
    oil: int,
    ts: int,
    depth: list[tuple[int, int, int]],
) -> bytes:
    """`depth`: 10 x (qty, price, orders), 5 bids then 5 offers."""
    b = quote(tok, *q) + struct.pack(">5I", ltt, oi, oih, oil, ts)
    for qty, pr, n in depth:
        b += struct.pack(">IIH2x", qty, pr, n)
    return b


def index_quote(tok: int, ltp: int, high: int, low: int, open_: int, close: int, change: int = 0) -> bytes:
    """28 bytes; note the order: high, low, open, close (not the quote packet's)."""
    return struct.pack(">6Ii", tok, ltp, high, low, open_, close, change)


def index_full(
    tok: int, ltp: int, high: int, low: int, open_: int, close: int, change: int = 0, *, ts: int
) -> bytes:
    return index_quote(tok, ltp, high, low, open_, close, change) + struct.pack(">I", ts)


def message(*packets: bytes) -> bytes:
    return struct.pack(">H", len(packets)) + b"".join(struct.pack(">H", len(p)) + p for p in packets)


def with_token(packet: bytes, token: int) -> bytes:
    return struct.pack(">I", token) + packet[4:]


# --------------------------------------------------------------------------------------------
# The ticker
# --------------------------------------------------------------------------------------------


class KiteTickerFake(WsFake):
    """Kite's ticker on 127.0.0.1: checks `api_key`/`access_token` in the query at the handshake
    (403 otherwise, or `reject_status` when set), records the client's control messages, tracks
    subscriptions and modes, and answers a `mode` message the way Kite does: with the current
    packet of each token in that mode (from `book[token][mode]`)."""

    def __init__(self, *, api_key: str, access_token: str) -> None:
        super().__init__(self._serve_client)
        self.api_key = api_key
        self.access_token = access_token
        self.reject_status: int | None = None
        self.received: list[dict[str, Any]] = []
        self.subscribed: set[int] = set()
        self.modes: dict[int, str] = {}
        self.queries: list[dict[str, list[str]]] = []
        self.clients: list[Any] = []
        self.book: dict[int, dict[str, bytes]] = {
            INFY: {"ltp": ltp(INFY, 157315), "quote": TICKER_QUOTE_PACKET, "full": TICKER_FULL_PACKET},
        }
        self._lock = threading.Lock()

    async def _main(self) -> None:  # WsFake's server, plus the handshake check
        self._stop = self.loop.create_future()

        async def serve(ws: Any) -> None:
            self.connections += 1
            self.paths.append(ws.request.path)
            self.headers.append({k.lower(): v for k, v in ws.request.headers.raw_items()})
            with contextlib.suppress(websockets.ConnectionClosed):
                await self.handler(ws)

        async with websockets.serve(
            serve, "127.0.0.1", 0, max_size=None, process_request=self._handshake
        ) as server:
            self.port = next(iter(server.sockets)).getsockname()[1]
            self._ready.set()
            await self._stop

    def _handshake(self, connection: Any, request: Any) -> Any:
        query = parse_qs(urlsplit(request.path).query)
        self.queries.append(query)
        if self.reject_status is not None:
            return connection.respond(HTTPStatus(self.reject_status), json.dumps(TOKEN_EXCEPTION))
        if query.get("api_key") != [self.api_key] or query.get("access_token") != [self.access_token]:
            return connection.respond(HTTPStatus.FORBIDDEN, json.dumps(TOKEN_EXCEPTION))
        return None

    async def _serve_client(self, ws: Any) -> None:
        self.clients.append(ws)
        try:
            async for text in ws:
                if not isinstance(text, str):
                    continue
                msg = json.loads(text)
                with self._lock:
                    self.received.append(msg)
                await self._control(ws, msg)
        finally:
            self.clients.remove(ws)

    async def _control(self, ws: Any, msg: dict[str, Any]) -> None:
        action, value = msg.get("a"), msg.get("v")
        if action == "subscribe":
            for tok in value:
                self.subscribed.add(tok)
                self.modes.setdefault(tok, "quote")
        elif action == "unsubscribe":
            for tok in value:
                self.subscribed.discard(tok)
                self.modes.pop(tok, None)
        elif action == "mode":
            mode, tokens = value
            snapshot = []
            for tok in tokens:
                self.modes[tok] = mode
                packet = self.book.get(tok, {}).get(mode)
                if packet is not None and tok in self.subscribed:
                    snapshot.append(packet)
            if snapshot:
                await ws.send(message(*snapshot))

    def control(self, action: str) -> list[Any]:
        """The `v` of every control message of one kind received so far."""
        with self._lock:
            return [m["v"] for m in self.received if m.get("a") == action]

    async def push(self, data: bytes | str) -> None:
        """Send a frame to every connected client (binary for bytes, text for str)."""

        async def send() -> None:
            for ws in list(self.clients):
                await ws.send(data)

        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(send(), self.loop))

    async def drop(self) -> None:
        """Cut every connection without a closing handshake, like a network failure."""

        async def cut() -> None:
            for ws in list(self.clients):
                ws.transport.abort()

        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(cut(), self.loop))


# --------------------------------------------------------------------------------------------
# REST
# --------------------------------------------------------------------------------------------

KITE_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")


class KiteRestFake(HttpFake):
    """Kite Connect REST on 127.0.0.1: `/instruments` (gzipped CSV, as the real server sends it)
    and `/instruments/historical/{token}/{interval}` with the exact envelopes. Every request
    must carry `X-Kite-Version: 3` and `Authorization: token <api_key>:<access_token>`, else a
    403 TokenException. `instruments_status` and `historical_429` script failures."""

    def __init__(self, *, api_key: str, access_token: str) -> None:
        super().__init__()
        self.api_key = api_key
        self.access_token = access_token
        self.instruments_status = 200
        self.historical_429 = 0  # answer this many historical requests with 429 first
        self.csv = INSTRUMENTS_CSV
        self.candles = {"minute": HISTORICAL_MINUTE, "day": HISTORICAL_DAY}
        self.route("GET", "/instruments", self._instruments)
        self.route("GET", "/instruments/historical/{token}/{interval}", self._historical)

    def requests_to(self, prefix: str) -> list[Request]:
        return [r for r in list(self.requests) if r.path.startswith(prefix)]

    def _authorized(self, req: Request) -> bool:
        return req.headers.get("x-kite-version") == "3" and req.headers.get("authorization") == (
            f"token {self.api_key}:{self.access_token}"
        )

    def _instruments(self, req: Request) -> Response:
        if not self._authorized(req):
            return Response(403, TOKEN_EXCEPTION)
        if self.instruments_status != 200:
            body = {"status": "error", "message": "Something went wrong", "error_type": "GeneralException"}
            return Response(self.instruments_status, body)
        return Response(200, gzip.compress(self.csv.encode()), {"Content-Encoding": "gzip"}, "text/csv")

    def _historical(self, req: Request) -> Response:
        if not self._authorized(req):
            return Response(403, TOKEN_EXCEPTION)
        if self.historical_429 > 0:
            self.historical_429 -= 1
            return Response(429, TOO_MANY_REQUESTS)
        for key in ("from", "to"):
            value = req.query.get(key, [""])[0]
            if not KITE_TIME.match(value):
                body = {"status": "error", "message": f"invalid {key} date", "error_type": "InputException"}
                return Response(400, body)
        body = self.candles.get(req.params["interval"])
        if body is None:
            return Response(
                400, {"status": "error", "message": "invalid interval", "error_type": "InputException"}
            )
        return Response(200, body)
