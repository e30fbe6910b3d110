"""Start the microws node from config.json (board profile: board.py beside this file)."""

import board
from node import app

app.main(board)
