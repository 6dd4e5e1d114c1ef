from crossroads.cli import app

app()
