"""Services: every write, one package per area of the loop (imports, votes, labelling, learning, jobs, exports,
demo). Views, API views, commands and tasks call them; they call mlcore, selectors and the models."""
