"""Trading without a screen: the order desk (the one path for every order: valid → every risk
rule → confirmed → broker → journal), its risk rules, the order line as traders type it
(`order_line.py`, read by the commands and the AI alike) and orders as JSON. The order model
itself (orders, fills, the ledger) is in `domain/`, below the brokers."""
