# first line: 222
def _fit(est, X, y, train, test, ids, scoring, key=None) -> dict:
    """One fit and its score through ``cross_validate`` on one split; ``key`` names it in a cache.

    Returns the row values, the history records and the predictions. scikit-learn reports a
    failed fit or score as a warning; its reason becomes the row's ``error``.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = cross_validate(est, X, y, cv=[(train, test)], scoring=scoring,
                                 return_estimator=True, error_score=np.nan)
        except ValueError as exc:
            if "fits failed" not in str(exc):
                raise
            res = {"test_mae": [np.nan], "test_rmse": [np.nan], "fit_time": [np.nan],
                   "score_time": [np.nan], "estimator": [None], "error": _reasons([str(exc)])}
    failures = []
    for w in caught:
        text = str(w.message)
        if issubclass(w.category, FitFailedWarning) or text.startswith("Scoring failed"):
            failures.append(text)
        else:  # not ours to swallow
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    failed = not np.isfinite(res["test_mae"][0])
    fitted = res["estimator"][0]
    row = {"n_train": len(train), "n_test": len(test), "test_mae": -res["test_mae"][0],
           "test_rmse": -res["test_rmse"][0], "fit_time": res["fit_time"][0],
           "score_time": res["score_time"][0], "epochs": np.nan,
           "status": "failed" if failed else "ok",
           "error": (res.get("error") or _reasons(failures) or "fit or scoring failed")
           if failed else "", "chosen": None}
    hist, pred = [], None
    if not failed:
        net = getattr(fitted, "best_estimator_", fitted)[-1]
        if hasattr(fitted, "best_params_"):
            row["chosen"] = fitted.best_params_
        history = getattr(net, "history", None)
        if history is not None:
            row["epochs"] = len(history)
            names = ("train_loss", "train_mae")
            hist = [{"epoch": e, **{c: h[c] for c in names if c in h}}
                    for e, h in enumerate(history, start=1)]
        y_pred = np.asarray(fitted.predict(_safe_indexing(X, test)), float).ravel()
        pred = pd.DataFrame({"index": test, "id": None if ids is None else [ids[i] for i in test],
                             "y_true": y[test], "y_pred": y_pred})
    return {"row": row, "hist": hist, "pred": pred}
