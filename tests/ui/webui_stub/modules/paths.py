models_path = "/nonexistent/models"
